//! The conformance suite on SQLite, in memory and in a file, and on PostgreSQL (a new
//! database per check on the server that LATCHKEY_TEST_POSTGRES_URL names; see
//! `latchkey_store::testing`).

use latchkey_store::SqliteStore;
use latchkey_store::testing::TestStore;

mod sqlite_memory {
    use super::*;

    latchkey_store::store_conformance_tests!(async {
        SqliteStore::connect("sqlite::memory:").await.unwrap()
    });
}

mod sqlite_file {
    use super::*;

    latchkey_store::store_conformance_tests!(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        TestStore::new(SqliteStore::connect(&url).await.unwrap()).holding(dir)
    });
}

mod postgres {
    latchkey_store::store_conformance_tests!(latchkey_store::testing::postgres_test_store());
}
