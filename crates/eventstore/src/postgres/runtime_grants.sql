-- What the runtime role ($1) may do in schema trellis: each table, view and
-- sequence with its privileges there (directly or through another role),
-- and the functions it may call (trigger functions left out).
SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' ELSE 'table' END AS kind,
       c.relname::text AS name,
       ARRAY(SELECT p.privilege
               FROM unnest(CASE WHEN c.relkind = 'S' THEN ARRAY['USAGE', 'SELECT', 'UPDATE']
                                ELSE ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',
                                           'REFERENCES', 'TRIGGER'] END)
                    WITH ORDINALITY AS p(privilege, n)
              WHERE CASE WHEN c.relkind = 'S' THEN has_sequence_privilege($1::name, c.oid, p.privilege)
                         ELSE has_table_privilege($1::name, c.oid, p.privilege) END
              ORDER BY p.n) AS privileges
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'trellis' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
UNION ALL
SELECT 'function', p.proname::text, ARRAY['EXECUTE']
  FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'trellis'
   AND p.prorettype <> 'trigger'::regtype
   AND has_function_privilege($1::name, p.oid, 'EXECUTE')
 ORDER BY 1, 2
