import { configDefaults, defineConfig } from 'vitest/config';

/**
 * The tests that need no root (no mounts, runc, namespaces or tmpfs): pure logic, SQLite, the
 * manifest loader, and whole reconcile turns on the in-memory fakes of test/fakes/. `npm run
 * test:unit` runs only these (`--project unit`), as any user; `npm test` runs both projects.
 */
export const UNIT_TESTS = [
  'test/reconcile/**/*.test.ts',
  'test/manifest/**/*.test.ts',
  'test/oci/**/*.test.ts',
  'test/config/**/*.test.ts',
  'test/notify/**/*.test.ts',
  'test/metadata/metadata.test.ts',
  'test/metadata/records.test.ts',
  'test/metadata/rollout-records.test.ts',
  'test/metadata/versioned-json.test.ts',
  'test/metadata/reconcile-lock-owner.test.ts',
  'test/metadata/crash.test.ts',
  'test/gc/mark.test.ts',
  'test/content/ingest-data-path.test.ts',
  'test/content/blob-check.test.ts',
  'test/runtime/health-spec.test.ts',
  'test/runtime/spec.test.ts',
  'test/runtime/spec-options.test.ts',
  'test/runtime/restart-policy.test.ts',
  'test/runtime/state.test.ts',
  'test/runtime/runtime-errors.test.ts',
  'test/durable/**/*.test.ts',
  'test/format/**/*.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Tests mount overlays, start registries and run runc: files run in parallel processes,
    // each test file owns its own temporary root and registry port.
    pool: 'forks',
    fileParallelism: true,
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT_TESTS } },
      { extends: true, test: { name: 'root', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, ...UNIT_TESTS] } },
    ],
  },
});
