;; A check that imports WASI (preview1, adapted to preview2 by the build): every run prints a
;; line to stdout, which the agent must route to its log. Written in WAT because the Rust WASI
;; standard library cannot be built on every machine that builds adrt.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 16) "wasi-hello")
  (data (i32.const 32) "1.0.0")
  ;; check-info { name: (16, 10), version: (32, 5) }
  (data (i32.const 64) "\10\00\00\00\0a\00\00\00\20\00\00\00\05\00\00\00")
  ;; 96: a zeroed result<_, check-error>, i.e. ok; read as result<list<string>, check-error>,
  ;; ok with no warning
  (data (i32.const 160) "hello from a WASI check\n")

  ;; A bump allocator that grows memory as needed (the WASI adapter allocates its state here).
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $ptr i32)
    (local $end i32)
    (local.set $ptr
      (i32.and
        (i32.sub (i32.add (global.get $heap) (local.get $align)) (i32.const 1))
        (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq
              (memory.grow
                (i32.sub
                  (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16))
                  (memory.size)))
              (i32.const -1))
          (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $ptr))

  (func (export "info") (result i32) (i32.const 64))
  (func (export "init") (param i32 i32) (result i32) (i32.const 96))
  (func (export "validate") (param i32 i32 i32 i32) (result i32) (i32.const 96))
  (func (export "run") (param i32 i32 i32 i32) (result i32)
    ;; iovec { buf: 160, len: 24 } at 128; bytes written at 144
    (i32.store (i32.const 128) (i32.const 160))
    (i32.store (i32.const 132) (i32.const 24))
    (drop (call $fd_write (i32.const 1) (i32.const 128) (i32.const 1) (i32.const 144)))
    (i32.const 96))
)
