-- Version 5: the cascades that foreign keys cannot declare, as triggers (the same as
-- migrations/sqlite/0005_cascades.sql). With version 1's foreign keys (users ->
-- identities, sessions, api_keys, ON DELETE CASCADE) the schema owns every cascade: a
-- store method deletes one row and the database does the rest, in the same transaction.

-- A deleted identity takes the sessions that logged in with it.
CREATE FUNCTION identities_delete_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sessions
    WHERE app_id = OLD.app_id AND provider_type = OLD.provider_type AND identity_id = OLD.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER identities_delete_sessions AFTER DELETE ON identities
FOR EACH ROW EXECUTE FUNCTION identities_delete_sessions();

-- A deleted `local-userpass` identity takes its email/password credentials (the
-- identity id is the credential id).
CREATE FUNCTION identities_delete_userpass() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM userpass_credentials WHERE app_id = OLD.app_id AND id = OLD.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER identities_delete_userpass AFTER DELETE ON identities
FOR EACH ROW WHEN (OLD.provider_type = 'local-userpass')
EXECUTE FUNCTION identities_delete_userpass();

-- Deleted credentials take the confirmation / reset tokens of their email, so that
-- the tokens cannot act on a later registration of the same email.
CREATE FUNCTION userpass_credentials_delete_tokens() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM userpass_tokens WHERE app_id = OLD.app_id AND email = OLD.email;
    RETURN NULL;
END
$$;
CREATE TRIGGER userpass_credentials_delete_tokens AFTER DELETE ON userpass_credentials
FOR EACH ROW EXECUTE FUNCTION userpass_credentials_delete_tokens();

-- A deleted API key takes its `api-key` identity (whose id is the key id), and with it
-- the sessions created with the key; a server key also takes its server user.
CREATE FUNCTION api_keys_delete_identity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM identities
    WHERE app_id = OLD.app_id AND provider_type = 'api-key' AND id = OLD.id;
    IF OLD.kind = 'server' THEN
        DELETE FROM users WHERE app_id = OLD.app_id AND id = OLD.user_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER api_keys_delete_identity AFTER DELETE ON api_keys
FOR EACH ROW EXECUTE FUNCTION api_keys_delete_identity();

-- Disabling an API key revokes the sessions created with it.
CREATE FUNCTION api_keys_disable_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sessions
    WHERE app_id = NEW.app_id AND provider_type = 'api-key' AND identity_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER api_keys_disable_sessions AFTER UPDATE OF disabled ON api_keys
FOR EACH ROW WHEN (NEW.disabled)
EXECUTE FUNCTION api_keys_disable_sessions();
