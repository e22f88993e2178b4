//! OPA (the Go engine) as a whole process, for bench/compare.sh, through the
//! C ABI of the Go c-shared library the PyPI package
//! `opa-golib-python-bindings` ships (`libopabridge.so`): no Python in the
//! measured process. `opa LIBOPABRIDGE POLICY.rego QUERY PLAN` adds the
//! policy, evaluates QUERY (a set of violations) with the plan as input.
//!
//! Prints `{"violations":N}`.

use std::ffi::{CStr, CString, c_char, c_void};

type New = unsafe extern "C" fn() -> u64;
type AddPolicy = unsafe extern "C" fn(u64, *const c_char, *const c_char) -> *mut c_char;
type EvalQuery =
    unsafe extern "C" fn(u64, *const c_char, *const c_char, i32, i32) -> *mut c_char;

fn fail(what: &str) -> ! {
    eprintln!("error: {what}");
    std::process::exit(1);
}

/// A symbol of the loaded library, as the function type the caller names.
unsafe fn symbol<T>(lib: *mut c_void, name: &str) -> T {
    let cname = CString::new(name).expect("no NUL");
    // SAFETY: the caller names the symbol's C signature (the bridge's _native.py).
    let ptr = unsafe { libc::dlsym(lib, cname.as_ptr()) };
    if ptr.is_null() {
        fail(&format!("libopabridge has no {name}"));
    }
    // SAFETY: a function pointer of the declared signature.
    unsafe { std::mem::transmute_copy(&ptr) }
}

/// The envelope a bridge call returns, as text, or the error it carries.
fn envelope(ptr: *mut c_char) -> serde_json::Value {
    if ptr.is_null() {
        fail("the OPA bridge returned NULL");
    }
    // SAFETY: a NUL-terminated string the bridge allocated (never freed: the
    // process ends right after).
    let text = unsafe { CStr::from_ptr(ptr) }.to_string_lossy();
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| fail(&format!("envelope: {e}")));
    if !v["error"].is_null() {
        fail(&format!("OPA: {}", v["error"]));
    }
    v
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, lib, policy, query, plan] = args.as_slice() else {
        eprintln!("usage: opa LIBOPABRIDGE POLICY.rego QUERY PLAN");
        std::process::exit(2);
    };
    let clib = CString::new(lib.as_str()).expect("no NUL");
    // SAFETY: loading a shared library by path.
    let handle = unsafe { libc::dlopen(clib.as_ptr(), libc::RTLD_NOW) };
    if handle.is_null() {
        fail(&format!("could not load {lib}"));
    }
    let source = std::fs::read_to_string(policy).unwrap_or_else(|e| fail(&format!("{policy}: {e}")));
    let input = std::fs::read(plan).unwrap_or_else(|e| fail(&format!("{plan}: {e}")));
    let input = CString::new(input).unwrap_or_else(|_| fail("the plan holds a NUL byte"));
    let c = |s: &str| CString::new(s).expect("no NUL");
    // SAFETY: the signatures of the bridge's exported functions.
    unsafe {
        let new: New = symbol(handle, "OpaNew");
        let add_policy: AddPolicy = symbol(handle, "OpaAddPolicy");
        let eval: EvalQuery = symbol(handle, "OpaEvalQuery");
        let h = new();
        envelope(add_policy(h, c("policy.rego").as_ptr(), c(&source).as_ptr()));
        let result = envelope(eval(h, c(query).as_ptr(), input.as_ptr(), 0, 0));
        let n = result["result"][0]["expressions"][0]["value"]
            .as_array()
            .map(|a| a.len())
            .unwrap_or_else(|| fail(&format!("unexpected result: {}", result["result"])));
        println!("{{\"violations\":{n}}}");
    }
}
