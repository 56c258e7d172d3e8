/**
 * The console's build: a single-page app served by the server at /console (see
 * src/console/console-route.ts). Built at server start when stale (src/console/build-console.ts),
 * or by hand with `npm run console:build`.
 */
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  base: "/console/",
  plugins: [react()],
  // `npx vite console` for live reloading while editing: the API (and its WebSocket) from `npm start`.
  server: {
    proxy: { "/graphql": { target: process.env.CONSOLE_API_URL ?? "http://localhost:4000", ws: true } },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // Hashed names under assets/ are cached for a year by the server; index.html never is.
    assetsDir: "assets",
    chunkSizeWarningLimit: 600,
    sourcemap: false,
  },
});
