/**
 * A horizontal bar chart of each case's throughput as a share of its bare framework (same round,
 * median), one panel per framework. Hand-written SVG: no dependency, readable on GitHub in light
 * and dark themes (opaque background).
 */
import type { Framework, Impl } from '../http/cases.js';
import type { HttpRow } from './http-summary.js';
import { thousands } from './stats.js';

const WIDTH = 980;
const LABEL_WIDTH = 430;
const BAR_LEFT = LABEL_WIDTH + 10;
const BAR_MAX_WIDTH = WIDTH - BAR_LEFT - 70;
const ROW = 22;
const BAR = 15;
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

const COLORS: Record<Impl, string> = {
  bare: '#9e9e9e',
  'ratelock-memory': '#7fb3e6',
  'ratelock-redis': '#1f6fbf',
  naive: '#8c8c8c',
  erl: '#e8893a',
  rlf: '#d1603d',
  'koa-ratelimit': '#e8a23a',
};
const LEGEND: Array<[string, string]> = [
  ['ratelock RedisStore', COLORS['ratelock-redis']],
  ['ratelock MemoryStore', COLORS['ratelock-memory']],
  ['peer libraries', COLORS.erl],
  ['hand-written 1 EVALSHA/request', COLORS.naive],
];
const TITLE: Record<Framework, string> = { express: 'Express 5', koa: 'Koa 3' };

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function shareOfBareChart(rows: readonly HttpRow[], subtitleLines: readonly string[]): string {
  const frameworks = (['express', 'koa'] as const).filter((fw) => rows.some((r) => r.c.framework === fw && r.c.impl !== 'bare'));
  const maxRatio = Math.max(1, ...rows.map((r) => (Number.isFinite(r.ratio) ? r.ratio : 0)));
  const scaleMax = Math.ceil(maxRatio * 4) / 4; // axis to the next quarter
  const x = (ratio: number) => BAR_LEFT + (ratio / scaleMax) * BAR_MAX_WIDTH;

  const parts: string[] = [];
  let y = 42 + subtitleLines.length * 16;
  for (const fw of frameworks) {
    const bare = rows.find((r) => r.c.framework === fw && r.c.impl === 'bare');
    const cases = rows.filter((r) => r.c.framework === fw && r.c.impl !== 'bare');
    parts.push(`<text x="16" y="${y + 14}" font-size="15" font-weight="600" fill="#222">${TITLE[fw]}${bare ? ` — bare = ${thousands(bare.rps)} req/s = 1.00` : ''}</text>`);
    y += 26;
    const top = y;
    const bars: string[] = [];
    for (const r of cases) {
      const ratio = Number.isFinite(r.ratio) ? r.ratio : 0;
      bars.push(
        `<text x="${LABEL_WIDTH}" y="${y + BAR - 3}" font-size="12" text-anchor="end" fill="#222">${escape(r.c.label)}</text>`,
        `<rect x="${BAR_LEFT}" y="${y}" width="${(x(ratio) - BAR_LEFT).toFixed(1)}" height="${BAR}" fill="${COLORS[r.c.impl]}"><title>${escape(r.c.id)}: ${ratio.toFixed(2)} × bare</title></rect>`,
        // A white halo keeps the value readable where it crosses a gridline.
        `<text x="${(x(ratio) + 5).toFixed(1)}" y="${y + BAR - 3}" font-size="12" fill="#222" stroke="#fff" stroke-width="3" paint-order="stroke">${Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : '–'}</text>`,
      );
      y += ROW;
    }
    // Gridlines first, so the bars are drawn over them.
    parts.push(gridlines(top - 4, y, scaleMax, x), ...bars);
    y += 18;
  }
  parts.push(axisLabels(y, scaleMax, x));
  y += 30;
  let lx = 16;
  for (const [name, color] of LEGEND) {
    parts.push(`<rect x="${lx}" y="${y - 11}" width="12" height="12" fill="${color}"/><text x="${lx + 17}" y="${y}" font-size="12" fill="#222">${escape(name)}</text>`);
    lx += 40 + name.length * 6.5;
  }
  const height = y + 16;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ${FONT}>`,
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="16" y="24" font-size="17" font-weight="700" fill="#111">Throughput as a share of the bare framework (higher is better)</text>`,
    ...subtitleLines.map((line, i) => `<text x="16" y="${43 + i * 16}" font-size="12" fill="#555">${escape(line)}</text>`),
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

function ticks(scaleMax: number): number[] {
  return Array.from({ length: Math.round(scaleMax * 4) + 1 }, (_, i) => i / 4);
}

function gridlines(top: number, bottom: number, scaleMax: number, x: (ratio: number) => number): string {
  return ticks(scaleMax)
    .map((t) => {
      const one = t === 1;
      return `<line x1="${x(t).toFixed(1)}" y1="${top}" x2="${x(t).toFixed(1)}" y2="${bottom}" stroke="${one ? '#333' : '#ddd'}" stroke-width="${one ? 1.2 : 1}"${one ? ' stroke-dasharray="4 3"' : ''}/>`;
    })
    .join('\n');
}

function axisLabels(y: number, scaleMax: number, x: (ratio: number) => number): string {
  return ticks(scaleMax)
    .map((t) => `<text x="${x(t).toFixed(1)}" y="${y}" font-size="11" text-anchor="middle" fill="#555">${t.toFixed(2)}×</text>`)
    .join('\n');
}
