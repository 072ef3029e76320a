// A live writer for the in-use tests: opens IMAGE read-write and pwrites
// 4 KiB blocks at random block numbers in [0, BLOCKS) until its stdin closes
// (and at least MIN writes), recording every write. Each write holds its own
// identity (blockPattern below), so a checker can tell the last write of a
// block from an older one, from zeros and from the image's own data.
//
//   node random-writer.mjs IMAGE BLOCKS SEED MIN
//
// stdout: "opened\n" once open() returned (it blocks while another process
// holds a lease), then, at the end, one JSON line:
//   {"writes": N, "last": [[block, seq], ...]}   (seq of the last write per block)
import { closeSync, openSync, writeSync } from 'node:fs';

export const BLOCK = 4096;

/** The bytes of write number `seq` (1-based) to block `block`: no byte is zero. */
export function blockPattern(block, seq) {
  const b = Buffer.allocUnsafe(BLOCK);
  b.write('BSWRITER', 0, 'latin1');
  b.writeUInt32LE(block, 8);
  b.writeUInt32LE(seq, 12);
  let x = (Math.imul(block + 1, 2654435761) ^ Math.imul(seq, 40503)) >>> 0 || 1;
  for (let i = 16; i < BLOCK; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = (x & 0xff) | 1;
  }
  return b;
}

async function main() {
  const [image, blocksArg, seedArg, minArg] = process.argv.slice(2);
  const blocks = Number(blocksArg);
  let x = Number(seedArg) >>> 0 || 1;
  const min = Number(minArg ?? 0);
  let stop = false;
  process.stdin.on('end', () => (stop = true));
  process.stdin.on('close', () => (stop = true));
  process.stdin.resume();

  const fd = openSync(image, 'r+');
  process.stdout.write('opened\n');
  const last = new Map();
  let seq = 0;
  while (!stop || seq < min) {
    // Batches, so the stdin events get a turn between them.
    for (let i = 0; i < 64; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      const block = x % blocks;
      seq += 1;
      const buf = blockPattern(block, seq);
      let done = 0;
      while (done < BLOCK) done += writeSync(fd, buf, done, BLOCK - done, block * BLOCK + done);
      last.set(block, seq);
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  closeSync(fd);
  process.stdout.write(JSON.stringify({ writes: seq, last: [...last] }) + '\n');
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((err) => {
    process.stderr.write(`random-writer: ${err.message}\n`);
    process.exit(1);
  });
}
