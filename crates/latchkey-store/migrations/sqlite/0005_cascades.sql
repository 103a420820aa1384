-- Version 5: the cascades that foreign keys cannot declare, as triggers. With version 1's
-- foreign keys (users -> identities, sessions, api_keys, ON DELETE CASCADE) the schema
-- owns every cascade: a store method deletes one row and the database does the rest.

-- A deleted identity takes the sessions that logged in with it.
CREATE TRIGGER identities_delete_sessions AFTER DELETE ON identities
BEGIN
    DELETE FROM sessions
    WHERE app_id = OLD.app_id AND provider_type = OLD.provider_type AND identity_id = OLD.id;
END;

-- A deleted `local-userpass` identity takes its email/password credentials (the
-- identity id is the credential id).
CREATE TRIGGER identities_delete_userpass AFTER DELETE ON identities
WHEN OLD.provider_type = 'local-userpass'
BEGIN
    DELETE FROM userpass_credentials WHERE app_id = OLD.app_id AND id = OLD.id;
END;

-- Deleted credentials take the confirmation / reset tokens of their email, so that
-- the tokens cannot act on a later registration of the same email.
CREATE TRIGGER userpass_credentials_delete_tokens AFTER DELETE ON userpass_credentials
BEGIN
    DELETE FROM userpass_tokens WHERE app_id = OLD.app_id AND email = OLD.email;
END;

-- A deleted API key takes its `api-key` identity (whose id is the key id), and with it
-- the sessions created with the key; a server key also takes its server user.
CREATE TRIGGER api_keys_delete_identity AFTER DELETE ON api_keys
BEGIN
    DELETE FROM identities
    WHERE app_id = OLD.app_id AND provider_type = 'api-key' AND id = OLD.id;
    DELETE FROM users
    WHERE OLD.kind = 'server' AND app_id = OLD.app_id AND id = OLD.user_id;
END;

-- Disabling an API key revokes the sessions created with it.
CREATE TRIGGER api_keys_disable_sessions AFTER UPDATE OF disabled ON api_keys
WHEN NEW.disabled <> 0
BEGIN
    DELETE FROM sessions
    WHERE app_id = NEW.app_id AND provider_type = 'api-key' AND identity_id = NEW.id;
END;
