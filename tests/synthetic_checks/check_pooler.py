"""Run by tests/test_pooler.py: the suite's database access really goes through PgBouncer."""


def test_database_checks_go_through_the_pooler(ctx, db) -> None:  # type: ignore[no-untyped-def]
    assert ctx.stack.pooler_url and ctx.database_url == ctx.stack.pooler_url
    for _ in range(3):  # several transactions, each may land on another server connection
        assert db.query("SELECT current_setting('transaction_read_only') AS ro")[0]["ro"] == "off"
    assert db._conn.info.port == ctx.stack.services["pgbouncer"].port
