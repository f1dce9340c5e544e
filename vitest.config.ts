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

/**
 * Root tests that set up real networks (netavark bridges, iptables rules, the default network
 * `berth` and its subnet are machine-wide) or compare the machine's network state before and
 * after: they run one at a time, after all the others.
 */
export const SERIAL_TESTS = ['test/e2e/*network*.test.ts', 'test/network/**/*.test.ts', 'test/compose/**/*.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Tests mount overlays, start registries and run runc: files run in parallel processes,
    // each test file owns its own temporary root, cgroup parent and registry port. Most of an
    // end-to-end test's time is spent waiting (for a confirmAfter, a back-off, a probe), so three
    // files at once on two cores keep the suite short without starving one another.
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 3,
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT_TESTS } },
      { extends: true, test: { name: 'root', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, ...UNIT_TESTS, ...SERIAL_TESTS] } },
      {
        extends: true,
        test: {
          name: 'root-serial',
          include: SERIAL_TESTS,
          exclude: [...configDefaults.exclude, ...UNIT_TESTS],
          fileParallelism: false,
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
