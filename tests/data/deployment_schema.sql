-- The deployed system's schema as a variant of the reference stack's (issue 10's facts),
-- applied to a clone of the migrated and seeded template. Data is converted, not dropped,
-- so the variant is as "lived in" as the reference database.

-- No migration log: the version lives in app_settings, kept by hand.
DROP TABLE _migrations;
INSERT INTO app_settings (key, value, description)
SELECT 'schema_applied_at', to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       'Set by hand with schema_version'
FROM app_settings WHERE key = 'schema_version';

-- The runbook's two critical views are tables here.
CREATE TABLE metricas_conversa_tabela AS SELECT * FROM metricas_conversa;
DROP VIEW metricas_conversa;
ALTER TABLE metricas_conversa_tabela RENAME TO metricas_conversa;
CREATE TABLE avaliacoes_qualidade_tabela AS SELECT * FROM avaliacoes_qualidade;
DROP VIEW avaliacoes_qualidade;
ALTER TABLE avaliacoes_qualidade_tabela RENAME TO avaliacoes_qualidade;

-- The app's own critical tables and views.
CREATE TABLE doctor_state (
    cliente_id  bigint PRIMARY KEY REFERENCES clientes (id),
    estado      text NOT NULL DEFAULT 'novo',
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO doctor_state (cliente_id, estado, updated_at)
SELECT id, (ARRAY['novo', 'em_conversa', 'ativo'])[1 + id % 3], created_at FROM clientes;

CREATE TABLE intent_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cliente_id  bigint REFERENCES clientes (id),
    intent      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_intent_log_cliente_id ON intent_log (cliente_id);

CREATE TABLE touch_reconciliation_log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cliente_id     bigint REFERENCES clientes (id),
    touched_at     timestamptz NOT NULL,
    reconciled_at  timestamptz
);
CREATE INDEX idx_touch_reconciliation_log_cliente_id ON touch_reconciliation_log (cliente_id);

CREATE VIEW campaign_sends AS
SELECT e.id, e.campanha_id, e.cliente_id, e.status, e.enviado_em FROM envios e;

CREATE VIEW campaign_metrics AS
SELECT campanha_id, count(*) AS enviados,
       count(*) FILTER (WHERE status IN ('entregue', 'lido')) AS entregues
FROM envios GROUP BY campanha_id;

-- job_executions(id, job_name, started_at, finished_at, status, duration_ms, response_code,
-- error, items_processed); statuses running|success|error|timeout; job names with underscores.
ALTER TABLE job_executions RENAME COLUMN job_id TO id;
ALTER TABLE job_executions RENAME COLUMN ended_at TO finished_at;
ALTER TABLE job_executions RENAME COLUMN erro TO error;
ALTER TABLE job_executions RENAME COLUMN duracao_ms TO duration_ms;
ALTER TABLE job_executions DROP COLUMN created_at, DROP COLUMN scheduler_instance;
ALTER TABLE job_executions ADD COLUMN response_code integer, ADD COLUMN items_processed integer;
ALTER TABLE job_executions ALTER COLUMN status SET DEFAULT 'running';
UPDATE job_executions SET
    job_name = replace(job_name, '-', '_'),
    status = CASE status WHEN 'sucesso' THEN 'success' WHEN 'falha' THEN 'error'
                         WHEN 'executando' THEN 'running' ELSE status END,
    response_code = CASE WHEN status = 'sucesso' THEN 200 END;

-- fila_mensagens: no processada / updated_at; state is a status word with its timestamps.
ALTER TABLE fila_mensagens ADD COLUMN status text NOT NULL DEFAULT 'pendente',
    ADD COLUMN processando_desde timestamptz, ADD COLUMN enviada_em timestamptz;
UPDATE fila_mensagens SET status = CASE WHEN processada THEN 'enviada' ELSE 'pendente' END,
                          enviada_em = CASE WHEN processada THEN updated_at END;
ALTER TABLE fila_mensagens DROP COLUMN processada CASCADE, DROP COLUMN updated_at;
ALTER TABLE fila_mensagens ADD CONSTRAINT fila_mensagens_status_check
    CHECK (status IN ('pendente', 'processando', 'enviada', 'erro', 'cancelada', 'bloqueada'));
CREATE INDEX idx_fila_mensagens_status_created_at ON fila_mensagens (status, created_at);

-- julia_status.status in ativo|pausado|manutencao|erro.
UPDATE julia_status SET status = 'erro' WHERE status = 'error';

-- Supabase: row-level security on every table of public, the ones this variant created
-- included (as the reference's RLS migration does for its own).
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT c.relname FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity
    LOOP
        EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t.relname);
    END LOOP;
END
$$;

ANALYZE;

-- ===== Health (issue 15, the health helper's block): the prompts /health/deep checks =====
-- whats-agents bootstrap/01-schema.sql: prompts(id uuid, nome varchar(100), versao varchar(20),
-- tipo varchar(50), conteudo text NOT NULL, descricao text, ativo boolean DEFAULT false,
-- especialidade_id uuid, metadata jsonb, created_at, updated_at, created_by), UNIQUE (nome,
-- versao), index (nome, ativo), row-level security. The deep check reads nome, versao, ativo and
-- conteudo of julia_base, julia_primeira_msg and julia_tools (app/services/health/schema.py):
-- each must exist, be active, reach its minimum length (2000 / 100 / 300) and carry its
-- sentinels (app/services/health/constants.py REQUIRED_PROMPTS). The texts below are the
-- twin's own stand-ins, not the deployment's prompts.
CREATE TABLE prompts (
    id                uuid DEFAULT gen_random_uuid() PRIMARY KEY,
    nome              varchar(100) NOT NULL,
    versao            varchar(20) NOT NULL,
    tipo              varchar(50) NOT NULL,
    conteudo          text NOT NULL,
    descricao         text,
    ativo             boolean DEFAULT false,
    especialidade_id  uuid,
    metadata          jsonb DEFAULT '{}'::jsonb,
    created_at        timestamptz DEFAULT now(),
    updated_at        timestamptz DEFAULT now(),
    created_by        varchar(100),
    UNIQUE (nome, versao)
);
CREATE INDEX idx_prompts_nome_ativo ON prompts (nome, ativo);
INSERT INTO prompts (nome, versao, tipo, conteudo, ativo, created_by) VALUES
('julia_base', 'v1', 'sistema',
 'Twin stand-in for the base prompt. [INVARIANT:INBOUND_ALWAYS_REPLY] [INVARIANT:OPTOUT_ABSOLUTE] '
 || '[INVARIANT:KILL_SWITCHES_PRIORITY] [INVARIANT:NO_CONFIRM_WITHOUT_RESERVATION] '
 || '[INVARIANT:NO_IDENTITY_DEBATE] [CAPABILITY:HANDOFF] [FALLBACK:DIRETRIZES_EMPTY_OK] '
 || '[INVARIANT:OUTBOUND_QUIET_HOURS] [INVARIANT:NO_METACOMMUNICATION] '
 || repeat('Stand-in guidance text of the loopback twin. ', 50), true, 'twin'),
('julia_primeira_msg', 'v1', 'sistema', repeat('Stand-in first message. ', 6), true, 'twin'),
('julia_tools', 'v1', 'sistema', repeat('Stand-in tools description. ', 12), true, 'twin');
ALTER TABLE prompts ENABLE ROW LEVEL SECURITY;
ANALYZE prompts;
