"""The language model behind summaries and answers: one protocol (`LanguageModel`), two
engines (llama.cpp embedded, any OpenAI-compatible server), and the code that writes a
meeting's summary and an answer across meetings with every claim's citations checked."""
