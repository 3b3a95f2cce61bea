/// <reference types="vitest/config" />
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';
import { resolve } from 'node:path';

const backend = process.env.CONVEYOR_API ?? 'http://127.0.0.1:8000';

// In dev, serve the explorer at /graphiql like the backend does in production.
const graphiqlRoute: Plugin = {
  name: 'conveyor-graphiql-route',
  configureServer(server) {
    server.middlewares.use((req, _res, next) => {
      if (req.url === '/graphiql' || req.url?.startsWith('/graphiql?')) req.url = req.url.replace('/graphiql', '/graphiql.html');
      next();
    });
  },
};

export default defineConfig({
  base: '/',
  plugins: [react(), graphiqlRoute],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // GraphiQL pulls in Monaco; it only loads on /graphiql, so a big chunk there is expected.
    chunkSizeWarningLimit: 4000,
    rollupOptions: {
      onwarn(warning, warn) {
        // Third-party ("use no memo" in GraphiQL) directives: harmless, just noisy.
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(warning);
      },
      input: {
        index: resolve(import.meta.dirname, 'index.html'),
        graphiql: resolve(import.meta.dirname, 'graphiql.html'),
      },
    },
  },
  worker: { format: 'es' },
  server: {
    proxy: {
      '/graphql': { target: backend, ws: true, changeOrigin: true },
    },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
    setupFiles: ['src/test/setup.ts'],
  },
});
