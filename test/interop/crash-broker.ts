/** Child process for the crash test: a broker over the log in argv[2]; prints its port. */
import { startKafkaBroker } from '../../src/kafka/index.ts';
import { openLog } from '../../src/log/index.ts';

const dataDir = process.argv[2];
if (dataDir === undefined) throw new Error('usage: crash-broker.ts DATA_DIR');
const log = await openLog({ dataDir });
const broker = await startKafkaBroker({
  log,
  port: 0,
  logger: { info() {}, warn() {}, error() {} },
});
process.stdout.write(`${broker.port}\n`);
