// Move the keyboard focus once React has drawn what should hold it: after an answer from
// the server, the render comes a frame or two later, so look again on the next frames.
export function focusSoon(find: () => HTMLElement | null | undefined, frames = 60): void {
  const step = (left: number) => {
    const el = find();
    if (el) {
      el.focus();
      if (document.activeElement === el) return;
    }
    if (left > 0) requestAnimationFrame(() => step(left - 1));
  };
  requestAnimationFrame(() => step(frames));
}
