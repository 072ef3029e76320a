// Draws an extent map as an SVG picture: the source laid out as rows of a
// fixed byte range, each pixel column coloured by the kind holding most of
// its bytes, with a legend and totals. Runs of one colour become one rect,
// so a map of millions of extents still makes a small file.
import type { ExtentKind, ExtentMap } from '../api/extents.js';
import { formatBytes } from '../api/units.js';

const COLOURS: Record<ExtentKind, string> = { data: '#d9480f', zero: '#fab005', hole: '#dee2e6' };
const LABELS: Record<ExtentKind, string> = { data: 'data', zero: 'allocated, all zero', hole: 'hole (not allocated)' };

export interface SvgOptions {
  /** Pixel columns per row (default 1024). */
  columns?: number;
  /** Number of rows (default: up to 64, fewer for small sources). */
  rows?: number;
  rowHeight?: number;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

export function renderExtentSvg(map: ExtentMap, options: SvgOptions = {}): string {
  const columns = options.columns ?? 1024;
  const rowHeight = options.rowHeight ?? 12;
  const size = map.virtualSize;
  const rows = options.rows ?? Math.max(1, Math.min(64, Math.ceil(size / (columns * map.blockSize))));
  const cells = columns * rows;
  const perCell = size > 0 ? size / cells : 1;

  // Bytes of each kind per cell, accumulated from the extents in one pass.
  const bytes = { hole: new Float64Array(cells), zero: new Float64Array(cells), data: new Float64Array(cells) };
  for (const e of map.extents) {
    let pos = e.offset;
    const end = e.offset + e.length;
    while (pos < end) {
      const cell = Math.min(cells - 1, Math.floor(pos / perCell));
      const next = (cell + 1) * perCell;
      // The last cell takes the rest; `pos + 1` guards against float rounding.
      const cellEnd = cell === cells - 1 ? end : Math.min(end, next > pos ? next : pos + 1);
      bytes[e.kind][cell]! += cellEnd - pos;
      pos = cellEnd;
    }
  }
  const kindOf = (c: number): ExtentKind | undefined => {
    const d = bytes.data[c]!, z = bytes.zero[c]!, h = bytes.hole[c]!;
    if (d + z + h === 0) return undefined;
    // Any data in a pixel is shown: a lone 4 KiB block of data must not vanish.
    if (d > 0 && d >= Math.min(z + h, perCell / 64)) return 'data';
    return z >= h ? 'zero' : 'hole';
  };

  const marginTop = 40;
  const legendHeight = 70;
  const width = columns + 20;
  const height = marginTop + rows * rowHeight + legendHeight;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<title>${escapeXml(`blocksmith map of ${map.path}`)}</title>`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="10" y="18" font-size="14" font-weight="bold">${escapeXml(map.path)}</text>`);
  out.push(`<text x="10" y="33">${escapeXml(`${formatBytes(size)} (${size} bytes) · ${rows} rows of ${formatBytes(perCell * columns)} · 1 px = ${formatBytes(perCell)}`)}</text>`);
  for (let r = 0; r < rows; r++) {
    let c = 0;
    while (c < columns) {
      const k = kindOf(r * columns + c);
      let run = 1;
      while (c + run < columns && kindOf(r * columns + c + run) === k) run++;
      if (k) {
        out.push(`<rect x="${10 + c}" y="${marginTop + r * rowHeight}" width="${run}" height="${rowHeight - 1}" fill="${COLOURS[k]}"/>`);
      }
      c += run;
    }
  }
  const ly = marginTop + rows * rowHeight + 20;
  const totals: Record<ExtentKind, number> = { data: map.dataBytes, zero: map.zeroBytes, hole: map.holeBytes };
  (['data', 'zero', 'hole'] as ExtentKind[]).forEach((k, i) => {
    const x = 10 + i * Math.floor(columns / 3);
    const pct = size > 0 ? ((100 * totals[k]) / size).toFixed(1) : '0.0';
    out.push(`<rect x="${x}" y="${ly - 11}" width="14" height="14" fill="${COLOURS[k]}" stroke="#495057"/>`);
    out.push(`<text x="${x + 20}" y="${ly}" class="legend-${k}">${escapeXml(`${LABELS[k]}: ${formatBytes(totals[k])} (${pct}%)`)}</text>`);
  });
  out.push(`<text x="10" y="${ly + 22}">${escapeXml(`allocated on disk: ${formatBytes(map.allocatedSize)} · block size ${formatBytes(map.blockSize)} · ${map.extentCount} extents`)}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
