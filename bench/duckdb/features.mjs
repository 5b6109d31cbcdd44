// features.mjs computes mce's built-in invoice features in DuckDB, the way a
// user who knows SQL would, for the mce benchmark:
//
//   node features.mjs --threads N --out OUT.csv FILE...
//
// The files are the generator's default (non-messy) invoice files: a header,
// a comma delimiter, the schema's column order, UTF-8 text (DuckDB reads
// cp1252 only with its encodings extension, a download). Columns and types are
// given explicitly so that DuckDB does not sniff. It writes one CSV row per
// file and issuer with the same columns as mce's features files, plus the
// file, and prints one JSON line: {"duckdb": version, "rows": output rows}.
import { DuckDBInstance } from '@duckdb/node-api';

function parseArgs(argv) {
  const o = { threads: 1, out: '', files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--threads') o.threads = Number(argv[++i]);
    else if (a === '--out') o.out = argv[++i];
    else o.files.push(a);
  }
  if (!o.out || o.files.length === 0 || !(o.threads >= 1)) {
    throw new Error('usage: node features.mjs --threads N --out OUT.csv FILE...');
  }
  return o;
}

const quote = (s) => "'" + String(s).replaceAll("'", "''") + "'";

const o = parseArgs(process.argv.slice(2));
const db = await DuckDBInstance.create(':memory:', { threads: String(o.threads) });
const conn = await db.connect();

// Ties on the top receiver go to the smallest name, as in mce.
const sql = `
COPY (
  WITH t AS (
    SELECT filename AS file, issuer, receiver, issued_at, amount
    FROM read_csv([${o.files.map(quote).join(', ')}],
      header = true, delim = ',', quote = '"', escape = '"',
      filename = true, auto_detect = false, timestampformat = '%Y-%m-%d %H:%M:%S',
      columns = {'invoice_id': 'VARCHAR', 'issuer': 'VARCHAR', 'receiver': 'VARCHAR',
                 'issued_at': 'TIMESTAMP', 'amount': 'DECIMAL(18,4)', 'currency': 'VARCHAR',
                 'description': 'VARCHAR'})
  ),
  base AS (
    SELECT file, issuer,
      count(*) AS invoice_count, sum(amount) AS amount_total, avg(amount) AS amount_mean,
      stddev_samp(amount) AS amount_std, min(amount) AS amount_min, max(amount) AS amount_max,
      min(issued_at) AS first_issued, max(issued_at) AS last_issued
    FROM t GROUP BY file, issuer
  ),
  rcv AS (
    SELECT file, issuer, receiver, sum(amount) AS amt FROM t GROUP BY file, issuer, receiver
  ),
  top AS (
    SELECT file, issuer, count(*) AS distinct_receivers,
      first(receiver ORDER BY amt DESC, receiver ASC) AS top_receiver,
      max(amt) AS top_receiver_amount
    FROM rcv GROUP BY file, issuer
  )
  SELECT b.file, b.issuer AS user, invoice_count, amount_total, amount_mean, amount_std,
    amount_min, amount_max, distinct_receivers, first_issued, last_issued,
    top_receiver, top_receiver_amount, 0 AS bad_rows
  FROM base b JOIN top USING (file, issuer)
) TO ${quote(o.out)} (HEADER, DELIMITER ',')`;

const res = await conn.run(sql);
const rows = Number(res.rowsChanged ?? 0);
const ver = await conn.runAndReadAll('SELECT version()');
console.log(JSON.stringify({ duckdb: String(ver.getRows()[0][0]), rows }));
conn.closeSync?.();
db.closeSync?.();
