;; A check built against the contract as released at 0.1.0 (`wit/0.1.0/check.wit`): it imports
;; `adrt:check/submit@0.1.0` (and with it the types of `adrt:check/types@0.1.0`) and
;; `adrt:check/log@0.1.0`, and exports `info`, `init` and `run` but no `validate`, which came in
;; 0.1.1. On a host of a later 0.1.x it must load, run and submit: each run logs a line and
;; submits the gauge `legacy.runs` = 1 tagged `contract:0.1.0`. Written in WAT, like versioned,
;; because the SDK builds against the current contract only.
(module
  ;; emit-metric(metric): name (ptr, len), kind, value, tags (ptr, len), hostname and device
  ;; (option<string>: discriminant, ptr, len), flattened as the canonical ABI passes a record.
  (import "adrt:check/submit@0.1.0" "emit-metric"
    (func $emit_metric (param i32 i32 i32 f64 i32 i32 i32 i32 i32 i32 i32 i32)))
  ;; write(level, message (ptr, len))
  (import "adrt:check/log@0.1.0" "write" (func $log (param i32 i32 i32)))

  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 16) "legacy")
  (data (i32.const 32) "1.0.0")
  ;; check-info { name: (16, 6), version: (32, 5) }
  (data (i32.const 64) "\10\00\00\00\06\00\00\00\20\00\00\00\05\00\00\00")
  ;; 96: a zeroed result<_, check-error>, i.e. ok
  ;; 128: the tags, a list of one string: (160, 14)
  (data (i32.const 128) "\a0\00\00\00\0e\00\00\00")
  (data (i32.const 160) "contract:0.1.0")
  (data (i32.const 192) "legacy.runs")
  (data (i32.const 224) "a check built against adrt:check@0.1.0 ran")

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
  (func (export "run") (param i32 i32 i32 i32) (result i32)
    ;; level info (2)
    (call $log (i32.const 2) (i32.const 224) (i32.const 42))
    ;; gauge (kind 0) legacy.runs = 1, tags at 128 (one), no hostname, no device
    (call $emit_metric
      (i32.const 192) (i32.const 11) (i32.const 0) (f64.const 1)
      (i32.const 128) (i32.const 1)
      (i32.const 0) (i32.const 0) (i32.const 0)
      (i32.const 0) (i32.const 0) (i32.const 0))
    (i32.const 96))
)
