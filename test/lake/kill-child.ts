// Child process for the kill -9 test: appends batches of 10 rows forever, reporting each commit.
import { loadTable, SqliteCatalog } from '../../src/lake/index.ts';

const dir = process.argv[2] as string;
const catalog = new SqliteCatalog({ warehouse: dir });
const table = await loadTable(catalog, { namespace: ['db'], name: 'events' });
for (let batch = 0; ; batch++) {
  const rows = Array.from({ length: 10 }, (_, i) => ({ id: process.pid * 1_000_000 + batch * 10 + i, user_id: batch }));
  await table.append(rows);
  process.stdout.write(`committed ${batch}\n`);
}
