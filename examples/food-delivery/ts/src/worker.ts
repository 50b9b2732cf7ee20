// The food-delivery worker: runs the `order` workflow and its activities on a task queue.
//
//   node build/ts/src/worker.js [--address HOST:PORT] [--namespace NS] [--task-queue TQ]
//                               [--payment-outage SECONDS]
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from './activities';

interface Flags {
  address: string;
  namespace: string;
  taskQueue: string;
  paymentOutageSecs: number;
}

const USAGE = `usage: worker [--address HOST:PORT] [--namespace NS] [--task-queue TQ] [--payment-outage SECONDS]

  --address HOST:PORT         the server's gRPC address (default: $TEMPORAL_ADDRESS or 127.0.0.1:7233)
  --namespace NS              the namespace (default: default)
  --task-queue TQ             the task queue to poll (default: food-delivery-ts)
  --payment-outage SECONDS    every charge fails for this many seconds after the worker starts
                              (default: $PAYMENT_OUTAGE_SECS or 0)`;

function usageError(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

function parseSeconds(flag: string, value: string): number {
  const secs = Number(value);
  if (value.trim() === '' || !Number.isFinite(secs) || secs < 0) {
    usageError(`${flag}: expected a number of seconds, got '${value}'`);
  }
  return secs;
}

function parseFlags(argv: string[]): Flags {
  const flags: Flags = {
    address: process.env.TEMPORAL_ADDRESS || '127.0.0.1:7233',
    namespace: 'default',
    taskQueue: 'food-delivery-ts',
    paymentOutageSecs: process.env.PAYMENT_OUTAGE_SECS
      ? parseSeconds('PAYMENT_OUTAGE_SECS', process.env.PAYMENT_OUTAGE_SECS)
      : 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') {
      console.log(USAGE);
      process.exit(0);
    }
    // --flag value and --flag=value
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : undefined;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const next = argv[++i];
      if (next === undefined) usageError(`${name} needs a value`);
      return next;
    };
    switch (name) {
      case '--address':
        flags.address = value();
        break;
      case '--namespace':
        flags.namespace = value();
        break;
      case '--task-queue':
        flags.taskQueue = value();
        break;
      case '--payment-outage':
        flags.paymentOutageSecs = parseSeconds(name, value());
        break;
      default:
        usageError(`unknown argument '${arg}'`);
    }
  }
  return flags;
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const flags = parseFlags(process.argv.slice(2));
  const connection = await NativeConnection.connect({ address: flags.address });
  try {
    const worker = await Worker.create({
      connection,
      namespace: flags.namespace,
      taskQueue: flags.taskQueue,
      workflowsPath: require.resolve('./workflows'),
      activities: createActivities({ paymentOutageSecs: flags.paymentOutageSecs, startedAt }),
    });
    // run() starts polling right away; the SDK shuts the worker down gracefully on SIGINT/SIGTERM
    // and run() then resolves.
    const running = worker.run();
    console.log(`worker ready on task queue ${flags.taskQueue}`);
    if (flags.paymentOutageSecs > 0) {
      console.log(`payment service down for the first ${flags.paymentOutageSecs} s`);
    }
    await running;
  } finally {
    await connection.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
