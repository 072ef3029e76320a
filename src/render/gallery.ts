// The gallery: OUTDIR/index.html, one self-contained page (inline CSS and JS,
// no network) that shows the photos a carve run recovered, from file://.
//
// Which files get a tile: every file that was written as a photo of its own,
// i.e. complete, reassembled, partial and any status this module does not know
// yet that has a path. Embedded EXIF thumbnails are left out (each is a small
// copy of a photo that has its own tile; `parent` says which) and so are
// duplicates (not written; their offsets are listed on the tile of the file
// they duplicate). The page header counts both, and report.json lists them.
//
// Files recovered by name (carve --undelete, method 'metadata') get a tile
// when they were written and are JPEGs (checked by decoding: `jpeg` set),
// with their original name, path and mtime; other types recovered by name
// are counted in the header and listed in report.json.
//
// Types are loose on purpose: the page is rendered from report.json, whose
// statuses and fields grow with the carver (e.g. `reassembled` files with their
// `fragments`), and an older gallery must still render a newer report.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../output/carve-output.js';
import { GALLERY_CSS, GALLERY_SCRIPT } from './gallery-page.js';

export interface GalleryFragment {
  offset: number;
  length: number;
  /** A hole: `length` zero bytes the source does not hold, put in where the stored bytes reach `offset`. */
  zeros?: boolean;
}

export interface GalleryFile {
  offset: number;
  length: number;
  /** complete, reassembled, partial, thumbnail, duplicate, or a status added later. */
  status: string;
  /** Relative to the report's outDir. */
  path?: string;
  duplicateOf?: string;
  width?: number;
  height?: number;
  progressive?: boolean;
  brokeAt?: number;
  reason?: string;
  make?: string;
  model?: string;
  date?: string;
  fragments?: GalleryFragment[];
  /** 'metadata' (recovered by name), 'carved', 'reassembled'. */
  method?: string;
  /** Recovered by name: its original name, path and times. */
  name?: string;
  originalPath?: string;
  times?: { modified?: string };
  jpeg?: string;
}

/** What the gallery reads from a carve report (a CarveReport fits). */
export interface GalleryReport {
  source?: string;
  finishedAt?: string;
  cancelled?: boolean;
  /** false: the run did not end (stopped or failed); the page says where it stopped. */
  finished?: boolean;
  nextOffset?: number;
  files: GalleryFile[];
}

/** Statuses that never get a tile of their own (see the file comment). */
const NOT_TILED = new Set(['thumbnail', 'duplicate']);

/** Recovered by name but no photo to show (another file type, or not written). */
const byNameNotShown = (f: GalleryFile) => f.method === 'metadata' && (typeof f.path !== 'string' || typeof f.jpeg !== 'string');

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/**
 * JSON that can sit inside a <script> element: `<` and `>` are written as
 * \u003c / \u003e so a string holding `</script>` or `<!--` cannot end or
 * change the element; JSON.parse reads them back unchanged.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** The tiles' data: only the fields the page shows, each checked for its type. */
function tileData(files: GalleryFile[]): Record<string, unknown>[] {
  const dupes = new Map<string, number[]>();
  for (const f of files)
    if (f.status === 'duplicate' && typeof f.duplicateOf === 'string') {
      const list = dupes.get(f.duplicateOf) ?? [];
      list.push(f.offset);
      dupes.set(f.duplicateOf, list);
    }
  return files
    .filter((f) => !NOT_TILED.has(String(f.status)) && !byNameNotShown(f))
    .map((f) => {
      const path = str(f.path);
      const fragments = Array.isArray(f.fragments)
        ? f.fragments.filter((g) => num(g?.offset) !== undefined && num(g?.length) !== undefined).map((g) => ({ offset: g.offset, length: g.length, ...(g.zeros === true ? { zeros: true } : {}) }))
        : undefined;
      const t: Record<string, unknown> = {
        offset: num(f.offset) ?? 0,
        length: num(f.length) ?? 0,
        status: str(f.status) ?? 'unknown',
        path,
        width: num(f.width),
        height: num(f.height),
        progressive: f.progressive === true ? true : undefined,
        make: str(f.make),
        model: str(f.model),
        date: str(f.date),
        brokeAt: num(f.brokeAt),
        reason: str(f.reason),
        fragments: fragments?.length ? fragments : undefined,
        duplicates: path ? dupes.get(path) : undefined,
        method: str(f.method),
        name: str(f.name),
        originalPath: str(f.originalPath),
        mtime: str(f.times?.modified),
      };
      for (const k of Object.keys(t)) if (t[k] === undefined) delete t[k];
      return t;
    });
}

const cspHash = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** The gallery page for a carve report, as one HTML string. */
export function renderGallery(report: GalleryReport): string {
  const files = Array.isArray(report.files) ? report.files : [];
  const tiles = tileData(files);
  const count = (s: string) => files.reduce((a, f) => a + (f.status === s ? 1 : 0), 0);
  const thumbnails = count('thumbnail');
  const duplicates = count('duplicate');
  const otherByName = files.filter((f) => byNameNotShown(f) && typeof f.path === 'string').length;
  const byName = files.filter((f) => f.method === 'metadata' && !byNameNotShown(f)).length;
  const source = str(report.source) ?? 'unknown source';
  const when = str(report.finishedAt);
  const left: string[] = [];
  if (thumbnails > 0) left.push(`${thumbnails} embedded EXIF thumbnail${thumbnails === 1 ? '' : 's'} (copies inside the photos shown)`);
  if (duplicates > 0) left.push(`${duplicates} duplicate${duplicates === 1 ? '' : 's'} (listed on the tile of the file they repeat)`);
  if (otherByName > 0) left.push(`${otherByName} other file${otherByName === 1 ? '' : 's'} recovered by name (not photos; under recovered/)`);
  // Only the page's own script and style may run or apply, by hash: even a
  // string that escaped escaping could not execute. Images come from the
  // output directory; nothing is ever fetched from the network.
  const csp = [
    "default-src 'none'",
    `script-src ${cspHash(GALLERY_SCRIPT)}`,
    `style-src ${cspHash(GALLERY_CSS)}`,
    "img-src 'self' file:",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Recovered photos: ${escapeHtml(source)}</title>
<style>${GALLERY_CSS}</style>
</head>
<body>
<header>
<h1>Recovered photos from ${escapeHtml(source)}</h1>
<p class="summary">${tiles.length} file${tiles.length === 1 ? '' : 's'}${byName > 0 ? ` (${byName} recovered by name, ${tiles.length - byName} carved)` : ''}${when ? `, carved ${escapeHtml(when)}` : ''}${
    report.cancelled || report.finished === false ? `; the run was stopped at offset ${num(report.nextOffset) ?? '?'} (continue it with --resume)` : ''
  }. Details of every file are in <a href="report.json">report.json</a>.</p>
${left.length > 0 ? `<p class="note">Not shown as tiles: ${escapeHtml(left.join('; '))}.</p>\n` : ''}<div class="controls">
<span id="filters" role="group" aria-label="status"></span>
<label>sort by <select id="sort"><option value="offset">offset</option><option value="date">date</option><option value="size">size</option></select></label>
<label><input type="checkbox" id="reverse"> reverse</label>
<span id="count" class="muted"></span>
</div>
</header>
<noscript><p id="noscript">The tiles are built by the page's script; without it, see report.json.</p></noscript>
<main id="grid"></main>
<div id="more"></div>
<p id="empty" hidden>No photos to show.</p>
<script id="gallery-data" type="application/json">${jsonForScript({ files: tiles })}</script>
<script>${GALLERY_SCRIPT}</script>
</body>
</html>
`;
}

/**
 * Writes OUTDIR/index.html for `report`, so that a reader never sees half a
 * page: a fresh temporary file (O_EXCL|O_NOFOLLOW: nothing planted is
 * followed), then renamed into place. An existing index.html is replaced only
 * with `overwrite` (else EEXIST). Returns its path.
 */
export function writeGallerySync(outDir: string, report: GalleryReport, overwrite = false): string {
  writeFileAtomicSync(outDir, 'index.html', renderGallery(report), overwrite);
  return join(outDir, 'index.html');
}

/** writeGallerySync as a promise (the page is rendered and written in one go either way). */
export async function writeGallery(outDir: string, report: GalleryReport, options: { overwrite?: boolean } = {}): Promise<string> {
  return writeGallerySync(outDir, report, options.overwrite ?? false);
}
