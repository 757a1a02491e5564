import { Serdes, type TestOutputTopic, type TestRecord, type Windowed } from '../../src/streams/index.ts';

/** `key[start,end)=value@ts` for time windows, `key[start..end]=value@ts` for session/sliding windows. */
export function fmtWindowed(r: TestRecord<Windowed<string>, unknown>, inclusive = false): string {
  const w = (r.key as Windowed<string>).window;
  const win = inclusive ? `[${w.start}..${w.end}]` : `[${w.start},${w.end})`;
  return `${(r.key as Windowed<string>).key}${win}=${r.value === null ? 'null' : String(r.value)}@${r.timestamp}`;
}

export function readWindowed(out: TestOutputTopic<Windowed<string>, unknown>, inclusive = false): string[] {
  return out.readRecordsToList().map((r) => fmtWindowed(r, inclusive));
}

export function fmt(r: TestRecord<unknown, unknown>): string {
  return `${String(r.key)}:${r.value === null ? 'null' : String(r.value)}@${r.timestamp}`;
}

export const windowedString = Serdes.Windowed(Serdes.String());
export const S = Serdes.String();

/** Parses `key:value@ts` tokens separated by spaces. */
export function parseInputs(spec: string): [string, string, number][] {
  return spec
    .trim()
    .split(/\s+/)
    .filter((t) => t !== '|')
    .map((t) => {
      const m = /^([^:]+):([^@]*)@(-?\d+)$/.exec(t);
      if (m === null) throw new Error(`bad input token ${t}`);
      return [m[1] as string, m[2] as string, Number(m[3])];
    });
}
