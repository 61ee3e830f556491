import type { NextConfig } from "next";

// A static export (out/): the gateway serves it at / and no Node process runs in production.
const config: NextConfig = {
  output: "export",
  reactStrictMode: true,
  poweredByHeader: false,
  images: { unoptimized: true },
};

export default config;
