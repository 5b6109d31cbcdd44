// parquet_check.mjs reads mce's features files with DuckDB, an independent
// reader, for TestE2E_ParquetMatchesCSV:
//
//   node parquet_check.mjs '[{"csv": "a.features.csv", "parquet": "a.features.parquet"}, ...]'
//
// For each pair it prints one JSON line: the Parquet file's columns and
// types as DuckDB's DESCRIBE gives them, the rows of each file, and how many
// rows of each are not in the other (EXCEPT ALL both ways), the CSV read
// with the Parquet file's types, so that every value is compared typed.
import { DuckDBInstance } from '@duckdb/node-api';

const q = (s) => "'" + String(s).replaceAll("'", "''") + "'";
const pairs = JSON.parse(process.argv[2]);
const db = await DuckDBInstance.create(':memory:', { threads: '1' });
const conn = await db.connect();
const one = async (sql) => (await conn.runAndReadAll(sql)).getRowObjectsJson();

for (const p of pairs) {
  const desc = await one(`DESCRIBE SELECT * FROM read_parquet(${q(p.parquet)})`);
  const cols = desc.map((d) => `${q(d.column_name)}: ${q(d.column_type)}`).join(', ');
  const csv = `read_csv(${q(p.csv)}, header = true, auto_detect = false, delim = ',',
    quote = '"', escape = '"', columns = {${cols}})`;
  const pq = `read_parquet(${q(p.parquet)})`;
  const [r] = await one(`SELECT
    (SELECT count(*) FROM ${pq}) AS parquet_rows,
    (SELECT count(*) FROM ${csv}) AS csv_rows,
    (SELECT count(*) FROM (SELECT * FROM ${pq} EXCEPT ALL SELECT * FROM ${csv})) AS only_parquet,
    (SELECT count(*) FROM (SELECT * FROM ${csv} EXCEPT ALL SELECT * FROM ${pq})) AS only_csv`);
  console.log(JSON.stringify({
    parquet: p.parquet,
    columns: desc.map((d) => d.column_name),
    types: desc.map((d) => d.column_type),
    parquet_rows: Number(r.parquet_rows),
    csv_rows: Number(r.csv_rows),
    only_parquet: Number(r.only_parquet),
    only_csv: Number(r.only_csv),
  }));
}
