/**
 * berth's default seccomp profile, as data: which system calls a container may make. An
 * allowlist, like Docker's and Podman's default profiles (moby `profiles/seccomp/default.json`,
 * containers-common `seccomp.json`), written out here rather than read from the host's
 * /usr/share/containers/seccomp.json so that a container's filter does not change with the host's
 * package version, and so a device without containers-common gets the same protection.
 *
 * Where it differs from those two, it is stricter: io_uring (a long record of kernel exploits; Docker
 * dropped it too) and the keyring calls are refused outright, the NUMA calls need CAP_SYS_NICE and
 * the new mount API (fsopen, fspick, mount_setattr…) needs CAP_SYS_ADMIN, as in Docker.
 *
 * A call in no list is refused with ENOSYS (see seccomp.ts), so a new kernel's new syscall is
 * refused until it is reviewed, and libc falls back to an older call as it does on an old kernel.
 */

/** Allowed to every container. */
export const ALLOWED_SYSCALLS = [
  'accept', 'accept4', 'access', 'adjtimex', 'alarm', 'bind', 'brk', 'capget', 'capset', 'chdir', 'chmod',
  'chown', 'chown32', 'clock_adjtime', 'clock_adjtime64', 'clock_getres', 'clock_getres_time64',
  'clock_gettime', 'clock_gettime64', 'clock_nanosleep', 'clock_nanosleep_time64', 'close', 'close_range',
  'connect', 'copy_file_range', 'creat', 'dup', 'dup2', 'dup3', 'epoll_create', 'epoll_create1', 'epoll_ctl',
  'epoll_ctl_old', 'epoll_pwait', 'epoll_pwait2', 'epoll_wait', 'epoll_wait_old', 'eventfd', 'eventfd2',
  'execve', 'execveat', 'exit', 'exit_group', 'faccessat', 'faccessat2', 'fadvise64', 'fadvise64_64',
  'fallocate', 'fanotify_mark', 'fchdir', 'fchmod', 'fchmodat', 'fchown', 'fchown32', 'fchownat', 'fcntl',
  'fcntl64', 'fdatasync', 'fgetxattr', 'flistxattr', 'flock', 'fork', 'fremovexattr', 'fsetxattr', 'fstat',
  'fstat64', 'fstatat64', 'fstatfs', 'fstatfs64', 'fsync', 'ftruncate', 'ftruncate64', 'futex', 'futex_time64',
  'futex_waitv', 'futimesat', 'get_robust_list', 'get_thread_area', 'getcpu', 'getcwd', 'getdents',
  'getdents64', 'getegid', 'getegid32', 'geteuid', 'geteuid32', 'getgid', 'getgid32', 'getgroups',
  'getgroups32', 'getitimer', 'getpeername', 'getpgid', 'getpgrp', 'getpid', 'getppid', 'getpriority',
  'getrandom', 'getresgid', 'getresgid32', 'getresuid', 'getresuid32', 'getrlimit', 'getrusage', 'getsid',
  'getsockname', 'getsockopt', 'gettid', 'gettimeofday', 'getuid', 'getuid32', 'getxattr', 'inotify_add_watch',
  'inotify_init', 'inotify_init1', 'inotify_rm_watch', 'io_cancel', 'io_destroy', 'io_getevents',
  'io_pgetevents', 'io_pgetevents_time64', 'io_setup', 'io_submit', 'ioctl', 'ioprio_get', 'ioprio_set', 'ipc',
  'kill', 'landlock_add_rule', 'landlock_create_ruleset', 'landlock_restrict_self', 'lchown', 'lchown32',
  'lgetxattr', 'link', 'linkat', 'listen', 'listxattr', 'llistxattr', '_llseek', 'lremovexattr', 'lseek',
  'lsetxattr', 'lstat', 'lstat64', 'madvise', 'membarrier', 'memfd_create', 'memfd_secret', 'mincore', 'mkdir',
  'mkdirat', 'mknod', 'mknodat', 'mlock', 'mlock2', 'mlockall', 'mmap', 'mmap2', 'mprotect', 'mq_getsetattr',
  'mq_notify', 'mq_open', 'mq_timedreceive', 'mq_timedreceive_time64', 'mq_timedsend', 'mq_timedsend_time64',
  'mq_unlink', 'mremap', 'msgctl', 'msgget', 'msgrcv', 'msgsnd', 'msync', 'munlock', 'munlockall', 'munmap',
  'name_to_handle_at', 'nanosleep', 'newfstatat', '_newselect', 'open', 'openat', 'openat2', 'pause',
  'pidfd_open', 'pidfd_send_signal', 'pipe', 'pipe2', 'pkey_alloc', 'pkey_free', 'pkey_mprotect', 'poll',
  'ppoll', 'ppoll_time64', 'prctl', 'pread64', 'preadv', 'preadv2', 'prlimit64', 'process_mrelease',
  'pselect6', 'pselect6_time64', 'ptrace', 'pwrite64', 'pwritev',
  'pwritev2', 'read', 'readahead', 'readdir', 'readlink', 'readlinkat', 'readv', 'recv', 'recvfrom',
  'recvmmsg', 'recvmmsg_time64', 'recvmsg', 'remap_file_pages', 'removexattr', 'rename', 'renameat',
  'renameat2', 'restart_syscall', 'rmdir', 'rseq', 'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask',
  'rt_sigqueueinfo', 'rt_sigreturn', 'rt_sigsuspend', 'rt_sigtimedwait', 'rt_sigtimedwait_time64',
  'rt_tgsigqueueinfo', 'sched_get_priority_max', 'sched_get_priority_min', 'sched_getaffinity',
  'sched_getattr', 'sched_getparam', 'sched_getscheduler', 'sched_rr_get_interval',
  'sched_rr_get_interval_time64', 'sched_setaffinity', 'sched_setattr', 'sched_setparam', 'sched_setscheduler',
  'sched_yield', 'seccomp', 'select', 'semctl', 'semget', 'semop', 'semtimedop', 'semtimedop_time64', 'send',
  'sendfile', 'sendfile64', 'sendmmsg', 'sendmsg', 'sendto', 'set_robust_list', 'set_thread_area',
  'set_tid_address', 'setfsgid', 'setfsgid32', 'setfsuid', 'setfsuid32', 'setgid', 'setgid32', 'setgroups',
  'setgroups32', 'setitimer', 'setpgid', 'setpriority', 'setregid', 'setregid32', 'setresgid', 'setresgid32',
  'setresuid', 'setresuid32', 'setreuid', 'setreuid32', 'setrlimit', 'setsid', 'setsockopt', 'setuid',
  'setuid32', 'setxattr', 'shmat', 'shmctl', 'shmdt', 'shmget', 'shutdown', 'sigaction', 'sigaltstack',
  'signal', 'signalfd', 'signalfd4', 'sigpending', 'sigprocmask', 'sigreturn', 'sigsuspend', 'socketcall',
  'socketpair', 'splice', 'stat', 'stat64', 'statfs', 'statfs64', 'statx', 'symlink', 'symlinkat', 'sync',
  'sync_file_range', 'syncfs', 'sysinfo', 'tee', 'tgkill', 'time', 'timer_create', 'timer_delete',
  'timer_getoverrun', 'timer_gettime', 'timer_gettime64', 'timer_settime', 'timer_settime64', 'timerfd',
  'timerfd_create', 'timerfd_gettime', 'timerfd_gettime64', 'timerfd_settime', 'timerfd_settime64', 'times',
  'tkill', 'truncate', 'truncate64', 'ugetrlimit', 'umask', 'uname', 'unlink', 'unlinkat', 'utime',
  'utimensat', 'utimensat_time64', 'utimes', 'vfork', 'vmsplice', 'wait4', 'waitid', 'waitpid', 'write',
  'writev',
];

/** Allowed only on these architectures (Node's `process.arch` names). */
export const ARCH_SYSCALLS: { arches: string[]; names: string[] }[] = [
  { arches: ['x64'], names: ['arch_prctl'] },
  { arches: ['x64', 'ia32'], names: ['modify_ldt'] },
  { arches: ['arm', 'arm64'], names: ['arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'breakpoint', 'cacheflush', 'set_tls'] },
  { arches: ['ppc64'], names: ['sync_file_range2', 'swapcontext'] },
  { arches: ['s390x'], names: ['s390_pci_mmio_read', 's390_pci_mmio_write', 's390_runtime_instr'] },
  { arches: ['riscv64'], names: ['riscv_flush_icache'] },
];

/**
 * Allowed only with one of the capabilities listed for it (refused with EPERM otherwise), as in
 * Docker: the kernel checks these capabilities too, but the filter also shuts the call's code paths
 * (and their bugs) to a container that could never use them.
 */
export const CAPABILITY_SYSCALLS: { caps: string[]; names: string[] }[] = [
  {
    caps: ['CAP_SYS_ADMIN'],
    names: [
      'bpf', 'fanotify_init', 'fsconfig', 'fsmount', 'fsopen', 'fspick', 'lookup_dcookie', 'mount', 'mount_setattr',
      'move_mount', 'open_tree', 'perf_event_open', 'quotactl', 'quotactl_fd', 'setdomainname', 'sethostname', 'setns',
      'syslog', 'umount', 'umount2', 'unshare',
    ],
  },
  { caps: ['CAP_BPF'], names: ['bpf'] },
  { caps: ['CAP_PERFMON'], names: ['perf_event_open'] },
  { caps: ['CAP_SYSLOG'], names: ['syslog'] },
  { caps: ['CAP_DAC_READ_SEARCH'], names: ['open_by_handle_at'] },
  { caps: ['CAP_SYS_BOOT'], names: ['reboot'] },
  { caps: ['CAP_SYS_CHROOT'], names: ['chroot'] },
  { caps: ['CAP_SYS_MODULE'], names: ['delete_module', 'init_module', 'finit_module'] },
  { caps: ['CAP_SYS_PACCT'], names: ['acct'] },
  { caps: ['CAP_SYS_PTRACE'], names: ['kcmp', 'pidfd_getfd', 'process_madvise', 'process_vm_readv', 'process_vm_writev'] },
  { caps: ['CAP_SYS_RAWIO'], names: ['iopl', 'ioperm'] },
  { caps: ['CAP_SYS_TIME'], names: ['settimeofday', 'stime', 'clock_settime', 'clock_settime64'] },
  { caps: ['CAP_SYS_TTY_CONFIG'], names: ['vhangup'] },
  { caps: ['CAP_SYS_NICE'], names: ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node', 'migrate_pages', 'move_pages'] },
];

/**
 * Refused with EPERM whatever the capabilities: named so the refusal says "not permitted" rather than
 * "not implemented" for calls an app may probe (io_uring, keyrings), and so the review that kept
 * them out is written down.
 */
export const REFUSED_SYSCALLS = [
  'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'add_key', 'keyctl', 'request_key', 'kexec_load',
  'kexec_file_load', 'userfaultfd', 'swapon', 'swapoff', 'uselib', 'ustat', 'sysfs', '_sysctl', 'nfsservctl',
  'create_module', 'get_kernel_syms', 'query_module', 'bdflush', 'vm86', 'vm86old', 'pciconfig_iobase',
  'pciconfig_read', 'pciconfig_write',
];

/** personality(2) domains a container may select: Linux, with or without ADDR_NO_RANDOMIZE / UNAME26, and the query. */
export const PERSONALITY_VALUES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** socket(2) families refused: AF_VSOCK (40), a channel to the hypervisor, as Docker refuses it. */
export const REFUSED_SOCKET_FAMILIES = [40];

/** clone(2) flags that make namespaces (NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET): CAP_SYS_ADMIN only. */
export const CLONE_NAMESPACE_FLAGS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000];
