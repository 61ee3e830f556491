import type { Metadata, Viewport } from "next";
import "./globals.css";

export const metadata: Metadata = {
  title: "Scribe",
  description: "Self-hosted meeting transcription: who said what, when.",
  icons: { icon: "data:," },
};

export const viewport: Viewport = { width: "device-width", initialScale: 1, colorScheme: "light" };

export default function RootLayout({ children }: { children: React.ReactNode }) {
  return (
    // The interface language is chosen in the browser (App sets lang once it has).
    <html lang="en" suppressHydrationWarning>
      <body>{children}</body>
    </html>
  );
}
