// The static parts of the gallery page: its stylesheet and the script that
// builds the tiles in the browser. They are plain strings (not TypeScript
// functions stringified) so that what runs in the page is exactly what is
// written here, whatever transform compiled this module.
//
// The script reads the files from <script id="gallery-data"
// type="application/json"> and only ever puts report strings into the page
// through textContent and DOM properties, never as HTML: EXIF make/model and
// the reason text come from the carved bytes and are hostile input.
//
// It scales by rendering in batches: the first BATCH tiles at load, the next
// batch whenever the end of the grid comes within a few screens. Filtering and
// sorting work on the data array and re-render from the top, so the DOM holds
// only what the user has scrolled through, even with 100,000 files.

export const GALLERY_CSS = `
:root { color-scheme: light dark; --bg: #fafafa; --fg: #1b1b1b; --card: #fff; --muted: #666; --line: #ddd;
  --complete: #2e7d32; --reassembled: #1565c0; --partial: #e65100; --recovered: #6a1b9a; --other: #757575; }
@media (prefers-color-scheme: dark) { :root { --bg: #161616; --fg: #e8e8e8; --card: #222; --muted: #aaa; --line: #333; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--fg); }
header { position: sticky; top: 0; z-index: 1; background: var(--bg); border-bottom: 1px solid var(--line); padding: 10px 16px; }
h1 { font-size: 18px; margin: 0 0 4px; overflow-wrap: anywhere; }
.summary, .note { color: var(--muted); margin: 2px 0; }
.controls { display: flex; flex-wrap: wrap; gap: 6px 16px; align-items: center; margin-top: 6px; }
.controls label { display: inline-flex; gap: 4px; align-items: center; cursor: pointer; }
.controls .swatch { width: 10px; height: 10px; border-radius: 2px; display: inline-block; }
#grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 12px; padding: 16px; }
.tile { margin: 0; background: var(--card); border: 1px solid var(--line); border-top: 4px solid var(--other);
  border-radius: 6px; overflow: hidden; content-visibility: auto; contain-intrinsic-size: auto 300px; }
.tile .frame { display: flex; align-items: center; justify-content: center; height: 165px; background: repeating-conic-gradient(#8881 0 25%, #0000 0 50%) 0 0 / 16px 16px; }
.tile img { max-width: 100%; max-height: 165px; object-fit: contain; display: block; }
.tile .nofile { color: var(--muted); }
.tile figcaption { padding: 6px 8px 8px; font-size: 12px; overflow-wrap: anywhere; }
.tile figcaption > div { margin: 1px 0; }
.badge { display: inline-block; color: #fff; background: var(--other); border-radius: 3px; padding: 0 6px; font-weight: 600; }
.st-complete { border-top-color: var(--complete); } .st-complete .badge, .swatch.st-complete { background: var(--complete); }
.st-reassembled { border-top-color: var(--reassembled); } .st-reassembled .badge, .swatch.st-reassembled { background: var(--reassembled); }
.st-partial { border-top-color: var(--partial); } .st-partial .badge, .swatch.st-partial { background: var(--partial); }
.st-recovered { border-top-color: var(--recovered); } .st-recovered .badge, .swatch.st-recovered { background: var(--recovered); }
.swatch.st-other { background: var(--other); }
.break { color: var(--partial); }
.fragments { margin: 2px 0; padding-left: 18px; color: var(--muted); }
.muted { color: var(--muted); }
#more { height: 1px; }
#empty { padding: 24px 16px; color: var(--muted); }
`;

export const GALLERY_SCRIPT = `
'use strict';
(() => {
  const BATCH = 120;
  const KNOWN = ['recovered', 'complete', 'reassembled', 'partial'];
  const data = JSON.parse(document.getElementById('gallery-data').textContent);
  const files = data.files;
  const grid = document.getElementById('grid');
  const more = document.getElementById('more');
  const count = document.getElementById('count');
  const filters = document.getElementById('filters');
  const sortBy = document.getElementById('sort');
  const reverse = document.getElementById('reverse');
  const hidden = new Set();
  let shown = [];
  let rendered = 0;

  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const hex = (n) => '0x' + n.toString(16);
  const bytes = (n) => {
    const u = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + u[i];
  };
  // EXIF writes 2024:05:06 07:08:09; show it as a date, keep anything else as is.
  const exifDate = (s) => /^\\d{4}:\\d\\d:\\d\\d/.test(s) ? s.slice(0, 10).replace(/:/g, '-') + s.slice(10) : s;
  // The carver names files itself, but a path is still encoded segment by
  // segment so that no character in it can change what the URL means.
  const href = (p) => p.split('/').map(encodeURIComponent).join('/');
  const statusClass = (s) => 'st-' + (KNOWN.includes(s) ? s : 'other');

  function tile(f) {
    const t = el('figure', 'tile ' + statusClass(f.status));
    t.dataset.offset = String(f.offset);
    t.dataset.status = f.status;
    const frame = el('div', 'frame');
    if (typeof f.path === 'string') {
      const a = el('a');
      a.href = href(f.path);
      a.target = '_blank';
      const img = el('img');
      img.loading = 'lazy';
      img.decoding = 'async';
      img.alt = typeof f.name === 'string' ? f.name : f.status + ' file at offset ' + f.offset;
      if (f.width > 0 && f.height > 0) { img.width = f.width; img.height = f.height; }
      img.src = href(f.path);
      a.append(img);
      frame.append(a);
    } else {
      frame.append(el('span', 'nofile', 'no file written'));
    }
    const cap = el('figcaption');
    const head = el('div');
    head.append(el('span', 'badge', f.status));
    if (typeof f.method === 'string') head.append(' ', el('span', 'muted method', f.method === 'metadata' ? 'by name' : f.method));
    if (typeof f.path === 'string') head.append(' ', el('span', 'muted path', f.path));
    cap.append(head);
    // Recovered by name: the name and place it had, and its mtime (FAT: local wall-clock time).
    if (typeof f.originalPath === 'string') cap.append(el('div', 'original', f.originalPath));
    if (typeof f.mtime === 'string') cap.append(el('div', 'mtime', 'modified ' + f.mtime.replace('T', ' ')));
    cap.append(el('div', 'where', 'offset ' + f.offset + ' (' + hex(f.offset) + ') · ' + bytes(f.length)));
    if (f.width > 0 && f.height > 0) cap.append(el('div', 'dims', f.width + ' × ' + f.height + (f.progressive ? ' · progressive' : '')));
    const camera = [f.make, f.model].filter((s) => typeof s === 'string' && s !== '').join(' ');
    if (camera) cap.append(el('div', 'camera', camera));
    if (typeof f.date === 'string' && f.date !== '') cap.append(el('div', 'date', exifDate(f.date)));
    if (typeof f.brokeAt === 'number') {
      const why = typeof f.reason === 'string' && f.reason !== '' ? ': ' + f.reason : '';
      cap.append(el('div', 'break', 'breaks at ' + f.brokeAt + ' (' + hex(f.brokeAt) + ', ' + (f.brokeAt - f.offset) + ' bytes in)' + why));
    } else if (typeof f.reason === 'string' && f.reason !== '') {
      cap.append(el('div', 'break', f.reason));
    }
    if (Array.isArray(f.fragments) && f.fragments.length > 0) {
      cap.append(el('div', 'muted', f.fragments.length + ' fragment' + (f.fragments.length === 1 ? '' : 's') + ':'));
      const ol = el('ol', 'fragments');
      for (const g of f.fragments.slice(0, 8)) ol.append(el('li', '', g.zeros === true ? bytes(g.length) + ' of zeros (a hole) at ' + hex(g.offset) : hex(g.offset) + ' (' + g.offset + ') + ' + bytes(g.length)));
      if (f.fragments.length > 8) ol.append(el('li', '', '… ' + (f.fragments.length - 8) + ' more in report.json'));
      cap.append(ol);
    }
    if (Array.isArray(f.duplicates) && f.duplicates.length > 0)
      cap.append(el('div', 'muted dups', 'same bytes also at offset ' + f.duplicates.join(', ')));
    t.append(frame, cap);
    return t;
  }

  function renderBatch() {
    const end = Math.min(rendered + BATCH, shown.length);
    const frag = document.createDocumentFragment();
    for (let i = rendered; i < end; i++) frag.append(tile(shown[i]));
    grid.append(frag);
    rendered = end;
  }

  const when = (f) => (f.date ? exifDate(f.date) : f.mtime ? f.mtime.replace('T', ' ') : '');
  // Files without a date sort last in either direction; ties keep offset order.
  const keys = {
    offset: (a, b) => a.offset - b.offset,
    size: (a, b) => a.length - b.length,
    // EXIF dates (2024:05:06 07:08:09) and mtimes (2024-05-06T07:08:09) order as plain strings once written alike.
    date: (a, b) => (when(a) < when(b) ? -1 : when(a) > when(b) ? 1 : 0),
  };
  function order() {
    const key = sortBy.value in keys ? sortBy.value : 'offset';
    const dir = reverse.checked ? -1 : 1;
    shown = files.filter((f) => !hidden.has(f.status));
    shown.sort((a, b) => {
      if (key === 'date' && !when(a) !== !when(b)) return when(a) ? -1 : 1;
      return dir * keys[key](a, b) || a.offset - b.offset;
    });
    grid.textContent = '';
    rendered = 0;
    renderBatch();
    count.textContent = shown.length === files.length ? files.length + ' shown' : shown.length + ' of ' + files.length + ' shown';
    grid.dataset.count = String(shown.length);
    document.getElementById('empty').hidden = shown.length > 0;
    watch();
  }

  // The observer fires only when the sentinel's intersection changes, so it is
  // re-armed after every batch: if the sentinel is still near, it fires again.
  const io = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && rendered < shown.length) {
      renderBatch();
      watch();
    }
  }, { rootMargin: '0px 0px 2000px 0px' });
  function watch() {
    io.unobserve(more);
    if (rendered < shown.length) io.observe(more);
  }

  const statuses = [...new Set(files.map((f) => f.status))].sort((a, b) => {
    const ia = KNOWN.indexOf(a), ib = KNOWN.indexOf(b);
    return (ia < 0 ? KNOWN.length : ia) - (ib < 0 ? KNOWN.length : ib) || a.localeCompare(b);
  });
  for (const s of statuses) {
    const label = el('label');
    const box = el('input');
    box.type = 'checkbox';
    box.checked = true;
    box.name = 'status';
    box.value = s;
    box.addEventListener('change', () => {
      if (box.checked) hidden.delete(s); else hidden.add(s);
      order();
    });
    const n = files.reduce((a, f) => a + (f.status === s ? 1 : 0), 0);
    label.append(box, el('span', 'swatch ' + statusClass(s)), el('span', '', s + ' (' + n + ')'));
    filters.append(label);
  }
  sortBy.addEventListener('change', order);
  reverse.addEventListener('change', order);
  order();
  performance.mark('gallery-first-tiles');
  document.documentElement.dataset.ready = '1';
})();
`;
