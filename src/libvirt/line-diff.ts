// A unified-style line diff of two small texts (a domain's XML before and
// after migrate's rewrite), for the dry run's plan: '-' old, '+' new, ' '
// context, hunks around the changes.

/** Lines of `a` and `b` with a longest common subsequence between them. */
function editScript(a: string[], b: string[]): { op: ' ' | '-' | '+'; line: string }[] {
  const n = a.length;
  const m = b.length;
  // lcs[i][j]: LCS length of a[i..] and b[j..]. Domain XMLs are a few hundred lines.
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: { op: ' ' | '-' | '+'; line: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ op: ' ', line: a[i]! });
      i++;
      j++;
    } else if (lcs[i + 1]![j]! >= lcs[i]![j + 1]!) out.push({ op: '-', line: a[i++]! });
    else out.push({ op: '+', line: b[j++]! });
  }
  while (i < n) out.push({ op: '-', line: a[i++]! });
  while (j < m) out.push({ op: '+', line: b[j++]! });
  return out;
}

/** The changed lines with `context` lines around them; '' when the texts are equal. */
export function lineDiff(before: string, after: string, labels: [string, string], context = 2): string {
  const script = editScript(before.split('\n'), after.split('\n'));
  const keep = new Array<boolean>(script.length).fill(false);
  script.forEach((s, k) => {
    if (s.op === ' ') return;
    for (let c = Math.max(0, k - context); c <= Math.min(script.length - 1, k + context); c++) keep[c] = true;
  });
  if (!keep.includes(true)) return '';
  const lines = [`--- ${labels[0]}`, `+++ ${labels[1]}`];
  let gap = true;
  script.forEach((s, k) => {
    if (!keep[k]) {
      gap = true;
      return;
    }
    if (gap) lines.push('@@');
    gap = false;
    lines.push(`${s.op}${s.line}`);
  });
  return lines.join('\n') + '\n';
}
