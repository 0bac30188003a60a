/** Counting system calls in `strace -f` output (bench/syscalls.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countSyscalls } from '../bench/lib/strace.ts';

test('each system call is counted once, by name and by thread, split calls at their first part', () => {
  const text = [
    '100 epoll_pwait(13,  <unfinished ...>',
    '107 pwrite64(112, "\\0\\0\\0\\1"..., 24, 4096) = 24',
    '100 <... epoll_pwait resumed>[{events=EPOLLIN, data={u32=22, u64=22}}], 1024, 10, NULL, 8) = 1',
    '100 read(22, "POST /v1/chat/completions HTTP/1."..., 65536) = 212',
    '100 writev(23, [{iov_base="POST /v1/chat/completions HTTP/1."..., iov_len=301}], 1) = 301',
    '100 write(35, "[\\"req_019\\"]\\n", 14) = 14',
    '107 pwrite64(112, "\\r\\0\\0\\0"..., 4096, 4120 <unfinished ...>',
    '100 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=5, si_uid=0} ---',
    '107 <... pwrite64 resumed>) = 4096',
    '101 futex(0x7f00, FUTEX_WAIT_PRIVATE, 0, NULL) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)',
    '101 restart_syscall(<... resuming interrupted futex ...>) = 0',
    '102 +++ exited with 0 +++',
    '',
  ].join('\n');
  const counts = countSyscalls(text, 100);
  assert.equal(counts.total, 8);
  assert.deepEqual(Object.fromEntries(counts.byName), { epoll_pwait: 1, pwrite64: 2, read: 1, writev: 1, write: 1, futex: 1, restart_syscall: 1 });
  assert.deepEqual(Object.fromEntries(counts.byThread), { 100: 4, 107: 2, 101: 2 });
  assert.deepEqual(Object.fromEntries(counts.mainByName), { epoll_pwait: 1, read: 1, writev: 1, write: 1 });
});

test('nothing but strace messages counts nothing', () => {
  const counts = countSyscalls('strace: Process 100 attached\n100 +++ killed by SIGKILL +++\n', 100);
  assert.equal(counts.total, 0);
  assert.equal(counts.byName.size, 0);
});
