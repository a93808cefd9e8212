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

-- === Maintenance: non-runtime tables (issue 15, points 14-18) ===
-- Non-runtime tables as the deployment's schema has them (whats-agents bootstrap/01-schema.sql),
-- for the maintenance checks (issue 15 points 14, 15 and 18). The reference's data is kept.
--
-- business_events (01-schema.sql:2585-2600): stamped by ts (no created_at); the doctor is
-- cliente_id, the conversation conversation_id, the event event_type / event_props, plus
-- source, interaction_id and dedupe_key. Its indexes as the schema names them (:5523-5587),
-- plus the one the runbook asks for on conversation_id (the real schema still lacks it) and
-- a partial one on interaction_id that the key's lookup implies (point 14).
ALTER TABLE business_events RENAME COLUMN created_at TO ts;
ALTER TABLE business_events RENAME COLUMN medico_id TO cliente_id;
ALTER TABLE business_events RENAME COLUMN conversa_id TO conversation_id;
ALTER TABLE business_events RENAME COLUMN evento TO event_type;
ALTER TABLE business_events RENAME COLUMN payload TO event_props;
ALTER TABLE business_events RENAME CONSTRAINT business_events_medico_id_fkey TO business_events_cliente_id_fkey;
ALTER TABLE business_events RENAME CONSTRAINT business_events_conversa_id_fkey TO business_events_conversation_id_fkey;
ALTER TABLE business_events
    ADD COLUMN source text NOT NULL DEFAULT 'backend'
        CHECK (source IN ('pipeline', 'backend', 'db', 'heuristic', 'ops')),
    ADD COLUMN interaction_id bigint REFERENCES interacoes (id) ON DELETE SET NULL,
    ADD COLUMN dedupe_key text;
DROP INDEX idx_business_events_created_at, idx_business_events_medico_id, idx_business_events_conversa_id;
CREATE INDEX idx_be_cliente_ts ON business_events (cliente_id, ts DESC);
CREATE INDEX idx_be_ts ON business_events (ts DESC);
CREATE INDEX idx_be_type_ts ON business_events (event_type, ts DESC);
CREATE UNIQUE INDEX idx_business_events_dedupe_key ON business_events (dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX idx_business_events_conversation_id ON business_events (conversation_id);
CREATE INDEX idx_business_events_interaction_id ON business_events (interaction_id)
    WHERE interaction_id IS NOT NULL;

-- interacoes (01-schema.sql:3703-3736): the conversation is conversation_id (index
-- idx_interacoes_conversation, :6079); attributed_campaign_id references campanhas and is
-- indexed only by partial indexes on its IS NOT NULL (:6067, :6071) — which cover the key.
ALTER TABLE interacoes RENAME COLUMN conversa_id TO conversation_id;
ALTER TABLE interacoes RENAME CONSTRAINT interacoes_conversa_id_fkey TO interacoes_conversation_id_fkey;
ALTER INDEX idx_interacoes_conversa_id RENAME TO idx_interacoes_conversation;
ALTER TABLE interacoes ADD COLUMN attributed_campaign_id bigint REFERENCES campanhas (id);
UPDATE interacoes SET attributed_campaign_id = (SELECT min(id) FROM campanhas) WHERE id % 10 = 0;
CREATE INDEX idx_interacoes_attributed_campaign ON interacoes (attributed_campaign_id)
    WHERE attributed_campaign_id IS NOT NULL;
CREATE INDEX idx_interacoes_attributed_campaign_created ON interacoes (attributed_campaign_id, created_at)
    WHERE attributed_campaign_id IS NOT NULL;

-- campanhas (01-schema.sql:2873-2901) has no criado_por; the schema has no conversas_grupo
-- table, so mensagens_grupo has no conversation of its own (:4161-4187), and its partial
-- index on offers (:6143) does not cover grupo_id (idx_mensagens_grupo_grupo_id does).
ALTER TABLE campanhas DROP COLUMN criado_por;
DROP TABLE conversas_grupo CASCADE;
ALTER TABLE mensagens_grupo DROP COLUMN conversa_grupo_id, ADD COLUMN eh_oferta boolean;
CREATE INDEX idx_mensagens_grupo_ofertas ON mensagens_grupo (grupo_id, created_at) WHERE eh_oferta = true;

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

-- === Runtime: the job history, the queue and the pause switch (issue 15, points 9-13) ===

-- job_executions(id, job_name, started_at, finished_at, status, duration_ms, response_code,
-- error, items_processed), as the scheduler writes it (whats-agents app/workers/scheduler.py;
-- columns per docs/operacao/workers.md — the table has no DDL in that repository): statuses
-- running|success|error|timeout, job names with underscores, no scheduler instance column.
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

-- fila_mensagens as whats-agents bootstrap/01-schema.sql has it (keys and references stay the
-- reference's bigint ones): no processada / updated_at; a nullable status word in
-- pendente|processando|enviada|erro|cancelada|bloqueada, agendar_para (when a row is due),
-- processando_desde (claimed), enviada_em (sent), attempts and the send outcome. A processed
-- reference row becomes a row claimed, sent and recorded SENT when it was processed, due when
-- it was created (enfileirar sets agendar_para to now when none is given, app/services/fila.py).
CREATE TYPE send_outcome AS ENUM (
    'SENT', 'BLOCKED_DEV_ALLOWLIST', 'BLOCKED_OPTED_OUT', 'BLOCKED_COOLING_OFF', 'BLOCKED_NEXT_ALLOWED',
    'BLOCKED_CONTACT_CAP', 'BLOCKED_CAMPAIGNS_DISABLED', 'BLOCKED_SAFE_MODE', 'BLOCKED_CAMPAIGN_COOLDOWN',
    'BLOCKED_QUIET_HOURS', 'DEDUPED', 'FAILED_PROVIDER', 'FAILED_VALIDATION', 'FAILED_BANNED',
    'FAILED_RATE_LIMIT', 'FAILED_CIRCUIT_OPEN', 'FAILED_NO_CAPACITY', 'BYPASS'
);
ALTER TABLE fila_mensagens
    ADD COLUMN tipo text NOT NULL DEFAULT 'lembrete',
    ADD COLUMN prioridade integer DEFAULT 5,
    ADD COLUMN status text DEFAULT 'pendente',
    ADD COLUMN agendar_para timestamptz,
    ADD COLUMN enviada_em timestamptz,
    ADD COLUMN metadata jsonb DEFAULT '{}'::jsonb,
    ADD COLUMN max_tentativas integer DEFAULT 3,
    ADD COLUMN tentativas integer DEFAULT 0,
    ADD COLUMN erro text,
    ADD COLUMN processando_desde timestamptz,
    ADD COLUMN outcome send_outcome,
    ADD COLUMN outcome_reason_code text,
    ADD COLUMN outcome_at timestamptz,
    ADD COLUMN provider_message_id text;
UPDATE fila_mensagens SET
    status = CASE WHEN processada THEN 'enviada' ELSE 'pendente' END,
    agendar_para = created_at,
    processando_desde = CASE WHEN processada THEN updated_at END,
    enviada_em = CASE WHEN processada THEN updated_at END,
    outcome = CASE WHEN processada THEN 'SENT'::send_outcome END,
    outcome_at = CASE WHEN processada THEN updated_at END;
ALTER TABLE fila_mensagens DROP COLUMN processada CASCADE, DROP COLUMN updated_at;
ALTER TABLE fila_mensagens
    ADD CONSTRAINT fila_mensagens_prioridade_check CHECK (prioridade >= 0 AND prioridade <= 10),
    ADD CONSTRAINT fila_mensagens_status_check
        CHECK (status IN ('pendente', 'processando', 'enviada', 'erro', 'cancelada', 'bloqueada'));
CREATE INDEX idx_fila_mensagens_status_agendar ON fila_mensagens (status, agendar_para)
    WHERE status = 'pendente';
CREATE INDEX idx_fila_mensagens_status_created_at ON fila_mensagens (status, created_at);

-- julia_status as bootstrap/01-schema.sql has it: uuid ids, status in
-- ativo|pausado|manutencao|erro (default 'ativo'), detalhes, alterado_por, alterado_via in
-- slack|sistema|api|manual; and the app's view julia_status_atual, the newest row of any kind.
UPDATE julia_status SET status = 'erro' WHERE status = 'error';
ALTER TABLE julia_status ALTER COLUMN id DROP IDENTITY;
ALTER TABLE julia_status ALTER COLUMN id TYPE uuid USING gen_random_uuid();
ALTER TABLE julia_status ALTER COLUMN id SET DEFAULT gen_random_uuid(),
    ALTER COLUMN status SET DEFAULT 'ativo',
    ADD COLUMN detalhes jsonb,
    ADD COLUMN alterado_por text,
    ADD CONSTRAINT julia_status_alterado_via_check CHECK (alterado_via IN ('slack', 'sistema', 'api', 'manual')),
    ADD CONSTRAINT julia_status_status_check CHECK (status IN ('ativo', 'pausado', 'manutencao', 'erro'));
CREATE VIEW julia_status_atual AS
SELECT id, status, motivo, detalhes, alterado_por, alterado_via, created_at
FROM julia_status ORDER BY created_at DESC LIMIT 1;

-- === end of the runtime block ===

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

-- ==== groups pipeline queue (GET /health/grupos) ===========================================
-- fila_processamento_grupos (whats-agents bootstrap/01-schema.sql:3676; read by
-- app/services/grupos/fila.py): one row per group message moving through the pipeline's
-- stages; empty in the twin (no group traffic), as a quiet deployment's.
CREATE TABLE fila_processamento_grupos (
    id             uuid DEFAULT gen_random_uuid() PRIMARY KEY,
    mensagem_id    uuid NOT NULL,
    estagio        varchar(50) NOT NULL DEFAULT 'pendente',
    tentativas     integer DEFAULT 0,
    max_tentativas integer DEFAULT 3,
    ultimo_erro    text,
    proximo_retry  timestamptz,
    created_at     timestamptz DEFAULT now(),
    updated_at     timestamptz DEFAULT now(),
    vaga_grupo_id  uuid
);
CREATE INDEX idx_fila_estagio ON fila_processamento_grupos (estagio);
ALTER TABLE fila_processamento_grupos ENABLE ROW LEVEL SECURITY;

-- ===== Security (issue 16 point 4): privileges and policies as the deployment's dump has them =====
-- whats-agents bootstrap/01-schema.sql grants table privileges to service_role only (e.g. :8911
-- campanhas, :8939 conversations, :9003 interacoes; no table grant names anon or authenticated)
-- and leaves anon and authenticated USAGE on schema public (:7365-7366): the reference's
-- Supabase-default grants are taken back.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM anon, authenticated;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM anon, authenticated;
-- The reference's operator policies are not the deployment's (its julia_status has RLS and no
-- policy, :7250; job_executions and health_incidents are not in the dump).
DROP POLICY operadores_leem_status ON julia_status;
DROP POLICY operadores_leem_jobs ON job_executions;
DROP POLICY operadores_leem_incidentes ON health_incidents;
DROP POLICY operadores_leem_campanhas ON campanhas;
-- Supabase's auth.role(): the role claim of the request's JWT (PostgREST puts the claims in
-- request.jwt.claims); NULL in a session that carries none.
CREATE SCHEMA IF NOT EXISTS auth;
CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role' $$;
-- The dump's policies on the tables this twin has. The dashboard's, always true for any
-- signed-in user (:6936-7036): INSERT, SELECT and UPDATE on campanhas, conversations, envios
-- and interacoes.
CREATE POLICY "Authenticated users can insert campanhas" ON campanhas FOR INSERT TO authenticated WITH CHECK (true);
CREATE POLICY "Authenticated users can read campanhas" ON campanhas FOR SELECT TO authenticated USING (true);
CREATE POLICY "Authenticated users can update campanhas" ON campanhas FOR UPDATE TO authenticated
    USING (true) WITH CHECK (true);
CREATE POLICY "Authenticated users can insert conversations" ON conversations FOR INSERT TO authenticated
    WITH CHECK (true);
CREATE POLICY "Authenticated users can read conversations" ON conversations FOR SELECT TO authenticated USING (true);
CREATE POLICY "Authenticated users can update conversations" ON conversations FOR UPDATE TO authenticated
    USING (true) WITH CHECK (true);
CREATE POLICY "Authenticated users can insert envios" ON envios FOR INSERT TO authenticated WITH CHECK (true);
CREATE POLICY "Authenticated users can read envios" ON envios FOR SELECT TO authenticated USING (true);
CREATE POLICY "Authenticated users can update envios" ON envios FOR UPDATE TO authenticated
    USING (true) WITH CHECK (true);
CREATE POLICY "Authenticated users can insert interacoes" ON interacoes FOR INSERT TO authenticated
    WITH CHECK (true);
CREATE POLICY "Authenticated users can read interacoes" ON interacoes FOR SELECT TO authenticated USING (true);
CREATE POLICY "Authenticated users can update interacoes" ON interacoes FOR UPDATE TO authenticated
    USING (true) WITH CHECK (true);
-- The service role's (it bypasses RLS on Supabase anyway): :6932, :7040, :7052, :7056, :7064,
-- :7076, :7306 to the role by name; :7048 and :7100 to PUBLIC, scoped by auth.role().
CREATE POLICY "Allow all for service role" ON doctor_state TO service_role USING (true) WITH CHECK (true);
CREATE POLICY "Service role all access" ON clientes TO service_role USING (true) WITH CHECK (true);
CREATE POLICY "Service role full access campanhas" ON campanhas TO service_role USING (true) WITH CHECK (true);
CREATE POLICY "Service role full access conversations" ON conversations TO service_role
    USING (true) WITH CHECK (true);
CREATE POLICY "Service role full access envios" ON envios TO service_role USING (true) WITH CHECK (true);
CREATE POLICY "Service role full access interacoes" ON interacoes TO service_role USING (true) WITH CHECK (true);
CREATE POLICY service_role_full_access ON touch_reconciliation_log TO service_role USING (true) WITH CHECK (true);
CREATE POLICY "Service role full access" ON app_settings
    USING (auth.role() = 'service_role') WITH CHECK (auth.role() = 'service_role');
CREATE POLICY "Service role full access on mensagens_grupo" ON mensagens_grupo
    USING (auth.role() = 'service_role') WITH CHECK (auth.role() = 'service_role');
-- touch_reconciliation_log refuses the API roles outright (:7161, :7165).
CREATE POLICY deny_anon_access ON touch_reconciliation_log TO anon USING (false);
CREATE POLICY deny_authenticated_access ON touch_reconciliation_log TO authenticated USING (false);
