;; A check whose `info` reports the version the build writes in place of 0.0.0 (`versioned-1.wasm`
;; says 1.0.0, `versioned-2.wasm` 2.0.0), so that a test can replace one version of a check by
;; another while the agent runs. Its runs succeed and submit nothing; it finds every config valid.
;; Written in WAT, like wasi-hello, to need no second guest crate for one string.
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 16) "versioned")
  (data (i32.const 32) "0.0.0")
  ;; check-info { name: (16, 9), version: (32, 5) }
  (data (i32.const 64) "\10\00\00\00\09\00\00\00\20\00\00\00\05\00\00\00")
  ;; 96: a zeroed result<_, check-error>, i.e. ok; read as result<list<string>, check-error>,
  ;; ok with no warning

  ;; A bump allocator (the host writes init_config and instances here); memory never shrinks.
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
  (func (export "run") (param i32 i32 i32 i32) (result i32) (i32.const 96))
)
