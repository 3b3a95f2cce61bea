-- Privileges of Conveyor's application role (`conveyor serve`, `conveyor worker`) in a database
-- whose tables belong to another role, the one that runs `conveyor migrate` (README, Security;
-- ADR-0014). The application then cannot drop or disable the audit log's triggers, and reads
-- and appends the logs without being able to change them.
--
--   psql -v ON_ERROR_STOP=1 -v app_role=conveyor_app -v owner=conveyor -f app-privileges.sql DB
--
-- Run it as the owner (or a superuser), before or after migrating; running it again is harmless.
-- docker-compose.yml runs it when the database is first created (deploy/postgres/10-app-role.sh).

GRANT USAGE ON SCHEMA public TO :"app_role";

-- The tables that exist now, and those that later migrations create.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO :"app_role";

-- The logs are read and appended, never changed. (Before the first migration they do not
-- exist yet: migration 0003 revokes the same from every role but the owner.)
SELECT to_regclass('audit_log') IS NOT NULL AS has_logs \gset
\if :has_logs
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log, policy_decisions FROM :"app_role";
\endif
