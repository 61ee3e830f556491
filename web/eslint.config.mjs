import nextVitals from "eslint-config-next/core-web-vitals";
import nextTs from "eslint-config-next/typescript";

const config = [
  ...nextVitals,
  ...nextTs,
  {
    rules: {
      // Loading from the API when a component mounts is the effect's own job (the state is
      // set once the answer comes); the rule cannot tell that from a synchronous update.
      "react-hooks/set-state-in-effect": "off",
    },
  },
  { ignores: [".next/**", "out/**", "node_modules/**", "next-env.d.ts", "src/api/schema.d.ts"] },
];

export default config;
