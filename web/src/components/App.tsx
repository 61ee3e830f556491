"use client";
// The page: search, upload, recordings, known voices (and an admin's keys) beside the selected job.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Api, setUnauthorizedHandler } from "@/api/client";
import type { Job, Me, Person, ResultSpeaker, StageInfo } from "@/api/types";
import { I18n, LANGUAGES, initialLanguage, rememberLanguage } from "@/i18n/i18n";
import { en } from "@/i18n/en";
import { parseRoute, useHash } from "@/lib/route";
import { ApiKey } from "./ApiKey";
import { JobList } from "./JobList";
import { JobView } from "./JobView";
import { Keys } from "./Keys";
import { Live } from "./Live";
import { People } from "./People";
import { Ask } from "./Ask";
import { Search } from "./Search";
import { Upload } from "./Upload";

export function App() {
  const [lang, setLang] = useState("en");
  const t = LANGUAGES[lang] ?? en;
  const [stages, setStages] = useState<StageInfo[] | null>(null);
  const [jobs, setJobs] = useState<Job[] | null>(null);
  const [speakers, setSpeakers] = useState<Record<string, ResultSpeaker[]>>({});
  const [people, setPeople] = useState<Person[]>([]);
  const [keyNeeded, setKeyNeeded] = useState<string | null>(null);
  const [me, setMe] = useState<Me | null>(null); // who the key is: an admin sees its keys
  const [generation, setGeneration] = useState(0); // a new key: everything loads again
  const route = parseRoute(useHash());
  const fetched = useRef(new Set<string>()); // jobs whose speakers were asked for

  useEffect(() => {
    // After hydration: the static HTML is English; the browser's choice applies from here.
    setLang(initialLanguage());
    setUnauthorizedHandler((message) => setKeyNeeded(message || "needed"));
  }, []);
  useEffect(() => {
    document.documentElement.lang = lang;
  }, [lang]);

  const refreshJobs = useCallback(async () => {
    let list: Job[];
    try {
      list = await Api.jobs();
    } catch {
      return;
    }
    setJobs(list);
    for (const j of list) {
      if (j.status !== "succeeded" || fetched.current.has(j.id)) continue;
      fetched.current.add(j.id);
      Api.speakers(j.id).then(
        (s) => setSpeakers((k) => ({ ...k, [j.id]: s })),
        () => fetched.current.delete(j.id),
      );
    }
  }, []);

  const refreshPeople = useCallback(async () => {
    try {
      setPeople(await Api.people());
    } catch {
      /* the key field, or later */
    }
  }, []);

  // A job's names changed (a rename, a correction, a replay): its summary is fetched again.
  const jobChanged = useCallback(
    (id: string) => {
      fetched.current.delete(id);
      setSpeakers((known) => Object.fromEntries(Object.entries(known).filter(([k]) => k !== id)));
      void refreshJobs();
    },
    [refreshJobs],
  );

  useEffect(() => {
    Api.stages().then(setStages, () => setStages([]));
  }, []);
  useEffect(() => {
    // With auth off, or a plain key, there is no Keys panel; 401 asks for a key as ever.
    Api.me().then(setMe, () => setMe(null));
  }, [generation]);
  useEffect(() => {
    void refreshJobs();
    void refreshPeople();
    // Jobs started elsewhere (the CLI, another tab) show up; quietly, every few seconds.
    const timer = setInterval(() => {
      if (document.visibilityState === "visible") void refreshJobs();
    }, 8000);
    return () => clearInterval(timer);
  }, [refreshJobs, refreshPeople, generation]);

  const chooseLang = (value: string) => {
    setLang(value);
    rememberLanguage(value);
  };

  const names = useMemo(() => people.map((p) => p.name), [people]);

  return (
    <I18n.Provider value={t}>
      <a className="skip" href="#job-view">
        {t.skip}
      </a>
      <header className="top">
        <div className="brand">
          <h1>Scribe</h1>
          <p className="tagline">{t.tagline}</p>
        </div>
        <label className="lang">
          {t.interfaceLanguage}{" "}
          <select id="lang" value={lang} onChange={(e) => chooseLang(e.target.value)}>
            {Object.entries(LANGUAGES).map(([code, m]) => (
              <option key={code} value={code} lang={code}>
                {m.languageName}
              </option>
            ))}
          </select>
        </label>
        <ApiKey
          needed={keyNeeded}
          onSaved={() => {
            setKeyNeeded(null);
            setGeneration((g) => g + 1);
          }}
        />
      </header>
      <main className="layout">
        <div className="side">
          <Search />
          <Ask />
          <Upload jobs={jobs} onUploaded={refreshJobs} />
          <Live onStarted={refreshJobs} />
          <JobList jobs={jobs} speakers={speakers} current={route.jobId} onChanged={refreshJobs} />
          <People people={people} onChanged={refreshPeople} />
          {me?.admin && <Keys key={me.key_id} me={me} />}
        </div>
        <section className="card job-view" id="job-view" aria-labelledby="job-title" tabIndex={-1}>
          {route.jobId && stages ? (
            <JobView
              key={`${route.jobId}:${generation}`}
              id={route.jobId}
              at={route.at}
              stages={stages}
              people={people}
              onJobChanged={jobChanged}
              onPeopleChanged={refreshPeople}
            />
          ) : (
            <div id="job-placeholder" className="placeholder">
              <h2 id="job-title">{t.nothingSelected}</h2>
              <p className="muted">{t.pickOne}</p>
            </div>
          )}
        </section>
      </main>
      <datalist id="people-names">
        {names.map((n) => (
          <option key={n} value={n} />
        ))}
      </datalist>
    </I18n.Provider>
  );
}
