// Times, durations and sizes as the page shows them.

export function clock(s: number | null | undefined): string {
  const t = Math.max(0, Math.floor(s ?? 0));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0");
  const ss = String(sec).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export function seconds(s: number | null | undefined, decimal = "."): string {
  if (s === null || s === undefined) return "";
  if (s < 0.05) return `< 0${decimal}1 s`;
  if (s < 10) return `${s.toFixed(1).replace(".", decimal)} s`;
  return s < 90 ? `${Math.round(s)} s` : clock(s);
}

export function bytes(n: number, units: readonly string[] = ["B", "KB", "MB", "GB"]): string {
  if (n < 1024) return `${n} ${units[0]}`;
  let v = n;
  let i = 0;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function when(iso: string, locale: string): string {
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today
    ? d.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleDateString(locale, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

export function day(iso: string, locale: string): string {
  return new Date(iso).toLocaleDateString(locale, { day: "numeric", month: "short", year: "numeric" });
}

export function quote(text: string, max = 60): string {
  return `“${text.length > max ? `${text.slice(0, max - 1)}…` : text}”`;
}

export function sentence(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
