"use client";
// The transcript as paragraphs (consecutive lines of one speaker), virtualised: only the
// paragraphs in view (and a few around) are in the DOM, so a 2-hour meeting opens at once.
import { useVirtualizer } from "@tanstack/react-virtual";
import { memo, useImperativeHandle, useMemo, useRef, useState, type Ref } from "react";
import type { MeetingResult, Segment } from "@/api/types";
import { useT } from "@/i18n/i18n";
import { clock } from "@/lib/format";
import { defaultName } from "@/lib/names";
import { NO_COLOUR, paragraphOf, paragraphs, type Paragraph } from "@/lib/transcript";
import { focusSoon } from "@/lib/focus";
import { LineEditor } from "./LineEditor";
import type { Status } from "@/lib/status";

export interface TranscriptHandle {
  /** Bring line `segment` into view; `focus` moves the keyboard focus to it too. */
  show: (segment: number, smooth: boolean, focus?: boolean) => void;
}

interface Props {
  ref: Ref<TranscriptHandle>;
  jobId: string;
  result: MeetingResult;
  colour: Record<string, string>;
  names: Record<string, string>;
  now: { segment: number; word: number } | null;
  onSeek: (t: number) => void;
  onPause: () => void;
  setStatus: (s: Status) => void;
  onCorrected: () => Promise<void>;
}

export function Transcript({ ref, jobId, result, colour, names, now, onSeek, onPause, setStatus, onCorrected }: Props) {
  const t = useT();
  const scroller = useRef<HTMLDivElement>(null);
  const [editing, setEditing] = useState<number | null>(null);
  const paras = useMemo(() => paragraphs(result.segments), [result]);
  // eslint-disable-next-line react-hooks/incompatible-library -- the virtualiser is read each render, by design
  const virtual = useVirtualizer({
    count: paras.length,
    getScrollElement: () => scroller.current,
    // About ten words a line of 24 px, plus the speaker's line: measured once drawn.
    estimateSize: (k) => 44 + Math.ceil((paras[k]?.words ?? 10) / 10) * 24,
    getItemKey: (k) => `${paras[k]?.first}:${paras[k]?.speaker}`,
    overscan: 4,
  });

  const focusLine = (i: number) => focusSoon(() => scroller.current?.querySelector<HTMLButtonElement>(`span.seg[data-line="${i}"] button.edit`));

  const show = (segment: number, _smooth: boolean, focus = false) => {
    if (!paras.length) return;
    virtual.scrollToIndex(paragraphOf(paras, segment), { align: focus ? "start" : "auto" });
    if (focus) focusLine(segment);
  };
  useImperativeHandle(ref, () => ({ show }));

  const edit = (i: number) => {
    onPause();
    setEditing(i);
  };
  const close = (i: number) => {
    setEditing(null);
    focusLine(i);
  };

  return (
    <div id="transcript-scroll" className="transcript-scroll" ref={scroller} tabIndex={0} role="region" aria-label={t.transcriptScroll}>
      <ol id="transcript" className="transcript" aria-label={t.transcript} data-paragraphs={paras.length} style={{ height: virtual.getTotalSize() }}>
        {virtual.getVirtualItems().map((item) => {
          const p = paras[item.index]!;
          const inside = (i: number | null | undefined) => (i != null && i >= p.first && i <= p.last ? i : null);
          return (
            <ParagraphView
              key={item.key}
              index={item.index}
              measure={virtual.measureElement}
              top={item.start}
              para={p}
              segments={result.segments}
              colour={colour[p.speaker] ?? NO_COLOUR}
              names={names}
              nowSegment={inside(now?.segment)}
              nowWord={inside(now?.segment) !== null ? (now?.word ?? null) : null}
              editing={inside(editing)}
              onSeek={onSeek}
              onEdit={edit}
              editor={(i) => (
                <LineEditor
                  key={i}
                  jobId={jobId}
                  result={result}
                  seg={result.segments[i]!}
                  index={i}
                  names={names}
                  onClose={() => close(i)}
                  onSaved={onCorrected}
                  setStatus={setStatus}
                />
              )}
              who={names[p.speaker] ?? defaultName(t, p.speaker)}
              playFrom={t.playFrom}
              editLabel={t.editLine}
              editText={t.edit}
            />
          );
        })}
      </ol>
    </div>
  );
}

interface ParagraphProps {
  index: number;
  measure: (el: Element | null) => void;
  top: number;
  para: Paragraph;
  segments: readonly Segment[];
  colour: string;
  names: Record<string, string>;
  nowSegment: number | null;
  nowWord: number | null;
  editing: number | null;
  onSeek: (t: number) => void;
  onEdit: (i: number) => void;
  editor: (i: number) => React.ReactNode;
  who: string;
  playFrom: (at: string) => string;
  editLabel: (at: string, who: string) => string;
  editText: string;
}

const ParagraphView = memo(
  function ParagraphView(props: ParagraphProps) {
    const { index, measure, top, para, segments, colour, nowSegment, nowWord, editing, onSeek, onEdit, editor, who } = props;
    const lines = [];
    for (let i = para.first; i <= para.last; i++) {
      const seg = segments[i]!;
      if (editing === i) {
        lines.push(<div key={i} className="seg editing" data-line={i}>{editor(i)}</div>);
        continue;
      }
      const words = seg.words ?? [];
      lines.push(
        <span
          key={i}
          className={`seg${nowSegment === i ? " playing" : ""}`}
          data-line={i}
          data-start={seg.start}
          data-speaker={seg.speaker}
          onDoubleClick={() => onEdit(i)}
        >
          {words.length
            ? words.map((w, j) => (
                <span key={j}>
                  {j > 0 && /^\s/.test(w.word) ? " " : ""}
                  <span className={`w${nowSegment === i && nowWord === j ? " now" : ""}`} data-start={w.start}>
                    {w.word.trim()}
                  </span>
                </span>
              ))
            : seg.text}
          <button type="button" className="quiet edit" aria-label={props.editLabel(clock(seg.start), who)} title={props.editText} onClick={() => onEdit(i)}>
            ✎
          </button>{" "}
        </span>,
      );
    }
    return (
      <li
        ref={measure}
        data-index={index}
        data-para={index}
        data-speaker={para.speaker}
        className="para"
        style={{ "--c": colour, transform: `translateY(${top}px)` } as React.CSSProperties}
      >
        <div className="para-head">
          <span className="who">{who}</span>
          <button type="button" className="t" aria-label={props.playFrom(clock(para.start))} onClick={() => onSeek(para.start)}>
            {clock(para.start)}
          </button>
        </div>
        <div
          className="text"
          onClick={(e) => {
            const w = (e.target as HTMLElement).closest<HTMLElement>(".w");
            if (w) onSeek(Number(w.dataset.start));
          }}
        >
          {lines}
        </div>
      </li>
    );
  },
  (a, b) =>
    a.top === b.top &&
    a.para === b.para &&
    a.segments === b.segments &&
    a.colour === b.colour &&
    a.who === b.who &&
    a.nowSegment === b.nowSegment &&
    a.nowWord === b.nowWord &&
    a.editing === b.editing &&
    a.names === b.names &&
    a.onSeek === b.onSeek &&
    a.playFrom === b.playFrom,
);
