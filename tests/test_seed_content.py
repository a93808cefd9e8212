"""The seed is realistic: Brazilian doctors with CRMs of their state, conversations and
interactions, every scheduled job executed, the queue processed, Júlia `ativo` — read from
the session stack's database (the state every fault self-test starts from)."""

from __future__ import annotations

import re
from collections import Counter

import psycopg

from fixtures.stack.backends.native import NativeStack
from plugins.contract import runtime as contract_runtime

NAME = re.compile(r"^Dra?\. [A-ZÀ-Ý][a-zà-ÿ]+( [A-ZÀ-Ý][a-zà-ÿ]+){1,3}$")
CRM = re.compile(r"^CRM-(?P<uf>[A-Z]{2}) (?P<number>\d{5,6})$")
PHONE = re.compile(r"^55\d{2}9\d{8}$")


def test_seed_is_a_realistic_healthy_day(healthy: NativeStack) -> None:
    assert healthy.info is not None
    rt = contract_runtime.load()
    with psycopg.connect(healthy.info.database_url) as conn:
        clientes = conn.execute("SELECT nome, crm, uf, telefone FROM clientes").fetchall()
        assert len(clientes) >= 100
        titles = Counter(nome.split(" ", 1)[0] for nome, *_ in clientes)
        assert set(titles) == {"Dr.", "Dra."}, titles
        for nome, crm, uf, telefone in clientes:
            assert NAME.match(nome), nome
            match = CRM.match(crm)
            assert match and match["uf"] == uf, (crm, uf)
            assert PHONE.match(telefone), telefone
        ufs = Counter(uf for _, _, uf, _ in clientes)
        assert ufs.most_common(1)[0][0] == "SP" and len(ufs) >= 5, ufs

        for table in ("conversations", "interacoes"):
            (n,), = conn.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names
            assert n > 0, table
        (orphans,), = conn.execute("SELECT count(*) FROM interacoes i LEFT JOIN clientes c ON c.id = i.cliente_id"
                                   " WHERE c.id IS NULL")
        assert orphans == 0

        pa = rt.pause
        (newest,), = conn.execute(f"SELECT {pa.status} FROM {pa.table} ORDER BY {pa.created_at} DESC LIMIT 1")
        assert newest in pa.active, newest

        ex = rt.executions
        succeeded = dict(conn.execute(
            f"SELECT {ex.job}, count(*) FROM {ex.table} WHERE {ex.status} = ANY (%s) GROUP BY 1",
            (list(rt.status.success),)).fetchall())
        missing = [job.name for job in rt.jobs if not succeeded.get(job.name)]
        assert missing == [], f"jobs never executed in the seed: {missing}"

        qu = rt.queue
        (processed, total), = conn.execute(
            f"SELECT count(*) FILTER (WHERE {qu.processed}), count(*) FROM {qu.table}")
        assert total > 0 and processed > 0, (processed, total)
