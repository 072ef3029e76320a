// The carve gallery (OUTDIR/index.html) opened from file:// in headless
// Chromium (Debian's chromium, driven by playwright-core): one tile per
// recovered photo, every complete photo decodes, the status filter and the
// sorts work, partial files say where they break, hostile EXIF text stays
// text, nothing is fetched from outside the output directory; a 10,000-file
// gallery loads within a few seconds with a small DOM. Without root and
// without chromium the browser suites skip (and say why); as root (CI) a
// missing or broken chromium fails them.
import { copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { carve, renderGallery, writeGallery, type CarveReport, type GalleryFile, type GalleryReport } from '../src/index.js';
import { fname, makeJpeg, randomBytes, withExif, withThumbnail } from './helpers/carve.js';
import { KiB, MiB, makeTempDir, removeDir, runCli, writeLayout, type Piece } from './helpers/foundation.js';

const CHROMIUM = process.env.BLOCKSMITH_CHROMIUM ?? '/usr/bin/chromium';
// Under `npm run test:asan` node runs with the ASan runtime preloaded; Chromium must not inherit it (it hangs).
const CHROMIUM_ENV = Object.fromEntries(
  Object.entries(process.env).filter(([k, v]) => v !== undefined && k !== 'LD_PRELOAD' && !/^(ASAN|UBSAN|LSAN)_OPTIONS$/.test(k)),
) as Record<string, string>;
const haveChromium = existsSync(CHROMIUM);
const isRoot = process.getuid?.() === 0;
const skipBrowser = !haveChromium && !isRoot;
if (skipBrowser)
  console.warn(
    `gallery.test.ts: SKIPPING the browser tests: no Chromium at ${CHROMIUM} and not root ` +
      `(test/setup.sh installs Debian's chromium when run as root; BLOCKSMITH_CHROMIUM=PATH picks another binary)`,
  );

const HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">';

let dir: string;
let image: string;
let out: string;
let report: CarveReport;
const at = { base: 64 * KiB, exif: 1 * MiB + 3, hostile: 2 * MiB, prog: 3 * MiB, thumbOuter: 4 * MiB, dup: 5 * MiB, partial: 6 * MiB };

beforeAll(async () => {
  dir = makeTempDir('gallery');
  const base = makeJpeg(dir, 'base', 320, 240, 1);
  const prog = makeJpeg(dir, 'prog', 400, 300, 2, ['-progressive']);
  const exif = withExif(makeJpeg(dir, 'exif', 120, 80, 9), 'Blocksmith', 'TestCam 1', '2024:05:06 07:08:09');
  const hostile = withExif(makeJpeg(dir, 'hostile', 200, 150, 11), 'Evil', HOSTILE, '2019:01:02 03:04:05');
  const outer = withThumbnail(makeJpeg(dir, 'outer', 640, 480, 8), makeJpeg(dir, 'thumb', 160, 120, 7));
  const pieces: Piece[] = [
    { offset: 0, bytes: randomBytes(8 * MiB, 99) },
    { offset: at.base, bytes: base },
    { offset: at.exif, bytes: exif },
    { offset: at.hostile, bytes: hostile },
    { offset: at.prog, bytes: prog },
    { offset: at.thumbOuter, bytes: outer },
    { offset: at.dup, bytes: base }, // same bytes again: a duplicate with dedupe
    { offset: at.partial, bytes: prog.subarray(0, Math.floor(prog.length * 0.6)) }, // cut, then random: partial
  ];
  image = join(dir, 'card.img');
  writeLayout(image, 8 * MiB, pieces);
  out = join(dir, 'out');
  report = await carve(image, { outDir: out, force: true, thumbnails: true, dedupe: true });
}, 60_000);
afterAll(() => removeDir(dir));

describe('carve writes the gallery', () => {
  it('by default: OUTDIR/index.html next to report.json, written via a temp file that is gone afterwards', () => {
    expect(report).toMatchObject({ complete: 5, partial: 1, thumbnails: 1, duplicates: 1 });
    expect(readdirSync(out).filter((n) => n.startsWith('index.html')).sort()).toEqual(['index.html']);
    expect(readFileSync(join(out, 'index.html'), 'utf8')).toMatch(/^<!doctype html>/);
  });

  it('not with gallery: false (library) or --no-gallery (CLI); the CLI writes it by default and --help mentions it', async () => {
    const lib = join(dir, 'out-nogallery');
    await carve(image, { outDir: lib, force: true, gallery: false });
    expect(existsSync(join(lib, 'report.json'))).toBe(true);
    expect(existsSync(join(lib, 'index.html'))).toBe(false);
    const cliOff = join(dir, 'out-cli-off');
    expect((await runCli(['carve', image, '-o', cliOff, '--force', '--quiet', '--no-gallery'])).code).toBe(0);
    expect(existsSync(join(cliOff, 'index.html'))).toBe(false);
    const cliOn = join(dir, 'out-cli-on');
    expect((await runCli(['carve', image, '-o', cliOn, '--force', '--quiet'])).code).toBe(0);
    expect(existsSync(join(cliOn, 'index.html'))).toBe(true);
    expect((await runCli(['carve', '--help'])).stdout).toMatch(/--no-gallery[\s\S]*index\.html/);
  });

  it('is self-contained: no external script, style, font or image reference; report strings are escaped in the HTML', () => {
    const html = readFileSync(join(out, 'index.html'), 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=|<link\b|@import|url\(\s*["']?(https?:|\/\/)/i);
    expect(html).not.toContain(HOSTILE); // only as \u003c-escaped JSON inside the data element
    expect(html.match(/<\/script>/g)).toHaveLength(2); // the data element's and the page script's own
  });
});

describe.skipIf(skipBrowser)('the gallery in headless Chromium', () => {
  let browser: Browser;
  let page: Page;
  const requests: string[] = [];
  const problems: string[] = [];
  const tiles = () => page.$$eval('#grid .tile', (ts) => ts.map((t) => ({ offset: Number((t as HTMLElement).dataset.offset), status: (t as HTMLElement).dataset.status })));

  beforeAll(async () => {
    if (!haveChromium) throw new Error(`no Chromium at ${CHROMIUM}: test/setup.sh installs Debian's chromium when run as root`);
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], env: CHROMIUM_ENV });
    } catch (err) {
      throw new Error(`cannot launch ${CHROMIUM} (headless, --no-sandbox): ${(err as Error).message}`);
    }
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('request', (r) => requests.push(r.url()));
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
    await page.goto(pathToFileURL(join(out, 'index.html')).href);
    await page.waitForSelector('html[data-ready="1"]');
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });

  it('shows one tile per recovered photo (complete and partial); the thumbnail and the duplicate get none', async () => {
    const t = await tiles();
    expect(t).toHaveLength(report.complete + report.partial);
    expect(t.filter((x) => x.status === 'partial')).toHaveLength(report.partial);
    expect(await page.textContent('#count')).toBe(`${report.complete + report.partial} shown`);
    expect(await page.textContent('header .note')).toMatch(/1 embedded EXIF thumbnail .*1 duplicate/);
    expect(await page.textContent(`.tile[data-offset="${at.base}"] .dups`)).toBe(`same bytes also at offset ${at.dup}`);
  });

  it('every complete photo has decoded (naturalWidth > 0 once in view), at its size', async () => {
    const complete = report.files.filter((f) => f.status === 'complete');
    for (const f of complete) {
      const img = page.locator(`.tile[data-offset="${f.offset}"] img`);
      await img.scrollIntoViewIfNeeded();
      await expect.poll(() => img.evaluate((i: HTMLImageElement) => i.complete && i.naturalWidth), { timeout: 10_000 }).toBe(f.width);
      expect(await img.evaluate((i: HTMLImageElement) => i.naturalHeight)).toBe(f.height);
    }
  });

  it('shows each tile with offset, size, dimensions, status, camera and date', async () => {
    const text = await page.textContent(`.tile[data-offset="${at.exif}"]`);
    expect(text).toContain(`offset ${at.exif} (0x${at.exif.toString(16)})`);
    expect(text).toContain('120 × 80');
    expect(text).toContain('complete');
    expect(await page.textContent(`.tile[data-offset="${at.exif}"] .camera`)).toBe('Blocksmith TestCam 1');
    expect(await page.textContent(`.tile[data-offset="${at.exif}"] .date`)).toBe('2024-05-06 07:08:09');
    const colours = await page.$$eval('.tile', (ts) => [...new Set(ts.map((t) => `${(t as HTMLElement).dataset.status}=${getComputedStyle(t).borderTopColor}`))].sort());
    expect(colours).toHaveLength(2); // complete and partial, each its own colour
    expect(new Set(colours.map((c) => c.split('=')[1])).size).toBe(2);
  });

  it('partial tiles show the offset where the file breaks and why', async () => {
    const p = report.files.find((f) => f.status === 'partial')!;
    expect(p.brokeAt).toBeGreaterThan(at.partial);
    const text = await page.textContent(`.tile[data-offset="${at.partial}"] .break`);
    expect(text).toContain(`breaks at ${p.brokeAt} (0x${p.brokeAt!.toString(16)}, ${p.brokeAt! - at.partial} bytes in)`);
    if (p.reason) expect(text).toContain(p.reason);
  });

  it('the status filter hides and brings back a status', async () => {
    const partial = page.locator('#filters input[value="partial"]');
    await partial.click();
    expect((await tiles()).map((t) => t.status)).toEqual(Array(report.complete).fill('complete'));
    expect(await page.textContent('#count')).toBe(`${report.complete} of ${report.complete + report.partial} shown`);
    await page.locator('#filters input[value="complete"]').click();
    expect(await tiles()).toEqual([]);
    expect(await page.isVisible('#empty')).toBe(true);
    await partial.click();
    expect(await tiles()).toEqual([{ offset: at.partial, status: 'partial' }]);
    await page.locator('#filters input[value="complete"]').click();
    expect(await tiles()).toHaveLength(report.complete + report.partial);
  });

  it('sorts by offset (the default), size and date, each reversible; files without a date come last', async () => {
    const shown = report.files.filter((f) => f.status === 'complete' || f.status === 'partial');
    const byOffset = shown.map((f) => f.offset).sort((a, b) => a - b);
    expect((await tiles()).map((t) => t.offset)).toEqual(byOffset);
    await page.selectOption('#sort', 'size');
    const bySize = [...shown].sort((a, b) => a.length - b.length || a.offset - b.offset).map((f) => f.offset);
    expect((await tiles()).map((t) => t.offset)).toEqual(bySize);
    await page.check('#reverse');
    const bySizeDown = [...shown].sort((a, b) => b.length - a.length || a.offset - b.offset).map((f) => f.offset);
    expect((await tiles()).map((t) => t.offset)).toEqual(bySizeDown);
    await page.selectOption('#sort', 'date');
    expect((await tiles()).map((t) => t.offset).slice(0, 2)).toEqual([at.exif, at.hostile]); // 2024, then 2019
    await page.uncheck('#reverse');
    const byDate = (await tiles()).map((t) => t.offset);
    expect(byDate.slice(0, 2)).toEqual([at.hostile, at.exif]);
    expect(byDate.slice(2)).toEqual(byOffset.filter((o) => o !== at.exif && o !== at.hostile));
    await page.selectOption('#sort', 'offset');
    expect((await tiles()).map((t) => t.offset)).toEqual(byOffset);
  });

  it('shows a <script> in the EXIF camera model as text and never runs it', async () => {
    expect(report.files.find((f) => f.offset === at.hostile)!.model).toBe(HOSTILE);
    expect(await page.textContent(`.tile[data-offset="${at.hostile}"] .camera`)).toBe(`Evil ${HOSTILE}`);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.$$eval('#grid script', (s) => s.length)).toBe(0);
    expect(await page.$$eval('#grid img', (s) => s.length)).toBe(report.complete + report.partial);
  });

  it('works from file:// with no other request than the images in the output directory, and no script error', () => {
    const base = pathToFileURL(out).href + '/';
    const outside = requests.filter((u) => !u.startsWith(base));
    expect(outside).toEqual([]);
    expect(requests.filter((u) => u.endsWith('.jpg')).length).toBeGreaterThan(0);
    expect(problems).toEqual([]);
  });

  it('saves a screenshot of the page (a non-trivial PNG)', async () => {
    await page.evaluate(() => window.scrollTo(0, 0));
    const png = join(dir, 'gallery.png');
    await page.screenshot({ path: png, fullPage: true });
    const bytes = readFileSync(png);
    expect(bytes.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    expect(bytes.length).toBeGreaterThan(20 * KiB);
  });

  it('renders statuses added later: reassembled in its own colour with its fragments, an unknown one as it is', async () => {
    const d = join(dir, 'later');
    mkdirSync(d);
    const src = report.files.find((f) => f.offset === at.prog)!;
    copyFileSync(join(out, src.path!), join(d, 'a.jpg'));
    const files: GalleryFile[] = [
      { offset: 100, length: src.length, status: 'complete', path: 'a.jpg', width: 400, height: 300 },
      { offset: 200, length: src.length, status: 'reassembled', path: 'a.jpg', width: 400, height: 300, fragments: [{ offset: 200, length: 4096 }, { offset: 9000, length: 20 * KiB }] },
      { offset: 300, length: src.length, status: 'partial', path: 'a.jpg', brokeAt: 400, reason: 'bad Huffman code' },
      { offset: 400, length: 10, status: 'mystery' },
    ];
    await writeGallery(d, { source: 'later.img', files });
    const p = await browser.newPage();
    await p.goto(pathToFileURL(join(d, 'index.html')).href);
    await p.waitForSelector('html[data-ready="1"]');
    const colour = (o: number) => p.$eval(`.tile[data-offset="${o}"]`, (t) => getComputedStyle(t).borderTopColor);
    const colours = await Promise.all([100, 200, 300, 400].map(colour));
    expect(new Set(colours).size).toBe(4);
    expect(await p.$$eval('.tile[data-offset="200"] .fragments li', (li) => li.map((l) => l.textContent))).toEqual([
      '0xc8 (200) + 4.0 KiB',
      '0x2328 (9000) + 20 KiB',
    ]);
    expect(await p.textContent('.tile[data-offset="400"] .badge')).toBe('mystery');
    expect(await p.textContent('.tile[data-offset="400"] .nofile')).toBe('no file written');
    expect(await p.$$eval('#filters input', (i) => i.map((x) => (x as HTMLInputElement).value))).toEqual(['complete', 'reassembled', 'partial', 'mystery']);
    await p.close();
  });

  it('loads a 10,000-file gallery in under 5 s (first tiles decoded) and keeps the DOM to a batch', async () => {
    const d = join(dir, 'many');
    mkdirSync(join(d, 'partial'), { recursive: true });
    const real = report.files.filter((f) => f.status === 'complete');
    const files: GalleryFile[] = [];
    for (let i = 0; i < 10_000; i++) {
      const like = real[i % real.length]!;
      const offset = (i + 1) * 64 * KiB;
      const partial = i % 10 === 9;
      const path = partial ? `partial/${fname(offset)}` : fname(offset);
      linkSync(join(out, like.path!), join(d, path)); // distinct URLs, a few real JPEGs
      files.push({
        ...like,
        offset,
        path,
        status: partial ? 'partial' : 'complete',
        ...(partial ? { brokeAt: offset + like.length - 100, reason: 'data ends early' } : {}),
        date: `20${String(10 + (i % 15)).padStart(2, '0')}:0${1 + (i % 9)}:1${i % 10} 12:00:00`,
      });
    }
    const many: GalleryReport = { source: '/dev/sdz', files };
    await writeGallery(d, many);
    const htmlBytes = statSync(join(d, 'index.html')).size;

    const p = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const t0 = performance.now();
    await p.goto(pathToFileURL(join(d, 'index.html')).href, { waitUntil: 'load' });
    await p.waitForFunction(() => {
      const img = document.querySelector<HTMLImageElement>('#grid .tile img');
      return !!img && img.complete && img.naturalWidth > 0;
    });
    const firstTilesMs = performance.now() - t0;
    const nav = await p.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
      const mark = performance.getEntriesByName('gallery-first-tiles')[0];
      return { domContentLoaded: n.domContentLoadedEventEnd, load: n.loadEventEnd, tilesBuilt: mark?.startTime ?? -1 };
    });
    const domTiles = await p.$$eval('#grid .tile', (t) => t.length);
    const t1 = performance.now();
    await p.selectOption('#sort', 'date');
    const sortMs = performance.now() - t1;
    console.log(
      `gallery, 10,000 files (index.html ${(htmlBytes / MiB).toFixed(1)} MiB): DOMContentLoaded ${nav.domContentLoaded.toFixed(0)} ms, ` +
        `tiles built ${nav.tilesBuilt.toFixed(0)} ms, load ${nav.load.toFixed(0)} ms, first tile decoded ${firstTilesMs.toFixed(0)} ms ` +
        `after navigation started; ${domTiles} tiles in the DOM; re-sort by date ${sortMs.toFixed(0)} ms`,
    );
    expect(firstTilesMs).toBeLessThan(5000);
    expect(sortMs).toBeLessThan(2000);
    expect(await p.textContent('#count')).toBe('10000 shown');
    expect(domTiles).toBeLessThanOrEqual(240);
    // Scrolling to the end of the grid renders the next batch.
    await p.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    await expect.poll(() => p.$$eval('#grid .tile', (t) => t.length)).toBeGreaterThan(domTiles);
    await p.close();
  });
});

describe('renderGallery', () => {
  it('writes report strings into the data element with < and > escaped, so </script> cannot end it', () => {
    const html = renderGallery({ source: '</title><script>x()</script>', files: [{ offset: 0, length: 1, status: 'complete', path: 'a.jpg', model: '</script><script>y()</script>' }] });
    expect(html).toContain('Recovered photos: &lt;/title&gt;&lt;script&gt;x()&lt;/script&gt;</title>');
    expect(html).toContain('"model":"\\u003c/script\\u003e\\u003cscript\\u003ey()\\u003c/script\\u003e"');
    expect(html).not.toContain('y()</script>');
  });
});
