//! The JNI fast path of the Kotlin/JVM facade (`bindings/kotlin`, class
//! `dev.turnout.internal.Jni`).
//!
//! Every UniFFI call from Kotlin goes through JNA and allocates a JNA
//! `Structure` for its call status (plus a handle clone per object argument),
//! which costs several microseconds; a JNI call with primitive arguments costs
//! tens of nanoseconds. So the facade's hot calls come here, and everything
//! else stays on the generated UniFFI API.
//!
//! A thin shell over the fast paths' one handle type ([`crate::fast`]): the
//! C ABI's [`TurnoutClient`], [`TurnoutContext`] and [`TurnoutVariable`],
//! as `jlong`s. The facade gets them from the generated objects'
//! `fastHandle()` or from [`Java_dev_turnout_internal_Jni_context`], owns
//! them, and frees them with the `free*` functions here. Nothing is decided
//! here. Facets travel as UTF-8 JSON bytes (the conformance vectors' form,
//! parsed by core) in the calls that take them.
//!
//! Nothing unwinds into the JVM: the typed getters are the C ABI's (which
//! catch panics), the others run inside `catch_unwind` (via the `jni`
//! crate's `with_env`) and answer the caller's default, or `null` / `0` for
//! the facade to turn into a typed exception.
//!
//! The caller keeps every handle alive for the duration of a call (the facade
//! counts calls in flight and frees a handle only when none is).

use std::panic::{catch_unwind, AssertUnwindSafe};

use jni::objects::{JByteArray, JClass, JString};
use jni::sys::{jboolean, jdouble, jlong, jstring};
use jni::{Env, EnvUnowned, Outcome};
use turnout_core::{Context, Facets, Variable};

use crate::capi::{client, prepared, TurnoutClient, TurnoutContext, TurnoutVariable};

/// Borrows the object behind a fast handle.
///
/// # Safety
/// `handle` is 0 or a live handle of a `T` (see the module docs).
unsafe fn borrow<'a, T>(handle: jlong) -> Option<&'a T> {
    // SAFETY: per the contract above; a null handle gives `None`.
    unsafe { (handle as u64 as usize as *const T).as_ref() }
}

/// A fresh engine context for `client` from facets JSON bytes (`None` when rejected).
fn context(
    env: &Env<'_>,
    client: &TurnoutClient,
    facets: &JByteArray<'_>,
) -> Result<Option<Context>, jni::errors::Error> {
    let v = env.convert_byte_array(facets)?;
    let Ok(text) = String::from_utf8(v) else { return Ok(None) };
    Ok(Facets::from_json_str(&text).ok().map(|f| client.client.context(f)))
}

/// Runs `f` with the JNI environment; any JNI error, facet error or panic
/// gives `default` instead (no exception is left pending by these calls).
fn with_env_or<'local, T>(
    env: &mut EnvUnowned<'local>,
    default: T,
    f: impl FnOnce(&mut Env<'local>) -> Result<Option<T>, jni::errors::Error>,
) -> T {
    match env.with_env(f).into_outcome() {
        Outcome::Ok(Some(v)) => v,
        _ => default,
    }
}

/// The typed numeric getters of `Jni`, one family: `Jni.<hot>(ctx, variable,
/// default)` (the prepared hot path: the C ABI's getter) and
/// `Jni.<one_shot>(client, variable, facetsJson, default)` (one decision
/// without a prepared context: `client.getVariable(name, facets).<type>(default)`).
macro_rules! numeric_getters {
    ($($hot:ident, $one_shot:ident: $jt:ty, $c:path, $get:ident;)*) => {$(
        #[doc = concat!("`Jni` prepared getter (as the C ABI's [`", stringify!($c), "`]).")]
        #[no_mangle]
        pub extern "system" fn $hot(
            _env: EnvUnowned<'_>,
            _class: JClass<'_>,
            ctx: jlong,
            variable: jlong,
            default: $jt,
        ) -> $jt {
            // The C ABI getter's body, inlined here rather than called: through the exported
            // function the JNI path measured ~7 % slower (docs/benchmarks.md, the fast handles A/B).
            // SAFETY: the facade passes live handles (module docs).
            let (Some(c), Some(v)) = (unsafe { borrow::<TurnoutContext>(ctx) }, unsafe { borrow::<TurnoutVariable>(variable) })
            else {
                return default;
            };
            catch_unwind(AssertUnwindSafe(|| c.0.$get(&v.0, default))).unwrap_or(default)
        }

        #[doc = concat!("`Jni` one-shot getter (`Context::", stringify!($get), "` on a context of the facets).")]
        #[no_mangle]
        pub extern "system" fn $one_shot<'local>(
            mut env: EnvUnowned<'local>,
            _class: JClass<'local>,
            client: jlong,
            variable: jlong,
            facets: JByteArray<'local>,
            default: $jt,
        ) -> $jt {
            one_shot(&mut env, client, variable, &facets, default, |c, v| c.$get(v, default))
        }
    )*};
}

numeric_getters! {
    Java_dev_turnout_internal_Jni_int64, Java_dev_turnout_internal_Jni_oneShotInt64:
        jlong, prepared::turnout_context_int64, int64;
    Java_dev_turnout_internal_Jni_float64, Java_dev_turnout_internal_Jni_oneShotFloat64:
        jdouble, prepared::turnout_context_float64, float64;
    Java_dev_turnout_internal_Jni_bool, Java_dev_turnout_internal_Jni_oneShotBool:
        jboolean, prepared::turnout_context_bool, bool;
}

/// `Jni.string(ctx, variable, default)`: the value as a string, or `null`
/// when the call could not be made (the facade then answers its default).
#[no_mangle]
pub extern "system" fn Java_dev_turnout_internal_Jni_string<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    ctx: jlong,
    variable: jlong,
    default: JString<'local>,
) -> jstring {
    // SAFETY: the facade passes live handles (module docs).
    let (Some(c), Some(v)) = (unsafe { borrow::<TurnoutContext>(ctx) }, unsafe { borrow::<TurnoutVariable>(variable) })
    else {
        return std::ptr::null_mut();
    };
    with_env_or(&mut env, std::ptr::null_mut(), |env| {
        let value = c.0.string(&v.0, &default.try_to_string(env)?);
        Ok(Some(env.new_string(value)?.into_raw()))
    })
}

/// `Jni.context(client, facetsJson)`: a new context handle (owned by the
/// caller, freed with `Jni.freeContext`), or 0 when the facets are rejected
/// (the facade then asks the generated API for the typed error).
#[no_mangle]
pub extern "system" fn Java_dev_turnout_internal_Jni_context<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    client: jlong,
    facets: JByteArray<'local>,
) -> jlong {
    // SAFETY: the facade passes a live client handle (module docs).
    let Some(client) = (unsafe { borrow::<TurnoutClient>(client) }) else { return 0 };
    with_env_or(&mut env, 0, |env| Ok(context(env, client, &facets)?.map(|c| crate::fast::handle(TurnoutContext(c)))))
}

/// `Jni.oneShotString(client, variable, facetsJson, default)`, or `null` when
/// the call could not be made.
#[no_mangle]
pub extern "system" fn Java_dev_turnout_internal_Jni_oneShotString<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    client: jlong,
    variable: jlong,
    facets: JByteArray<'local>,
    default: JString<'local>,
) -> jstring {
    // SAFETY: the facade passes live handles (module docs).
    let (Some(client), Some(v)) =
        (unsafe { borrow::<TurnoutClient>(client) }, unsafe { borrow::<TurnoutVariable>(variable) })
    else {
        return std::ptr::null_mut();
    };
    with_env_or(&mut env, std::ptr::null_mut(), |env| {
        let Some(c) = context(env, client, &facets)? else { return Ok(None) };
        let value = c.string(&v.0, &default.try_to_string(env)?);
        Ok(Some(env.new_string(value)?.into_raw()))
    })
}

/// The shared body of the numeric one-shot getters.
fn one_shot<'local, T: Copy>(
    env: &mut EnvUnowned<'local>,
    client: jlong,
    variable: jlong,
    facets: &JByteArray<'local>,
    default: T,
    get: impl FnOnce(&Context, &Variable) -> T,
) -> T {
    // SAFETY: the facade passes live handles (module docs).
    let (Some(client), Some(v)) =
        (unsafe { borrow::<TurnoutClient>(client) }, unsafe { borrow::<TurnoutVariable>(variable) })
    else {
        return default;
    };
    with_env_or(env, default, |env| {
        let Some(c) = context(env, client, facets)? else { return Ok(None) };
        Ok(Some(get(&c, &v.0)))
    })
}

/// `Jni.track(client, name, value, facetsJson)`: records a metric
/// (`Client::track` semantics, through a context of these facets).
/// `false` when the call could not be made (the facade then asks the
/// generated API, which raises the typed error).
#[no_mangle]
pub extern "system" fn Java_dev_turnout_internal_Jni_track<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    client: jlong,
    name: JString<'local>,
    value: jdouble,
    facets: JByteArray<'local>,
) -> jboolean {
    // SAFETY: the facade passes a live client handle (module docs).
    let Some(client) = (unsafe { borrow::<TurnoutClient>(client) }) else { return false };
    with_env_or(&mut env, false, |env| {
        let Some(c) = context(env, client, &facets)? else { return Ok(None) };
        c.track(&name.try_to_string(env)?, value);
        Ok(Some(true))
    })
}

/// `Jni.contextTrack(ctx, name, value)`: records a metric with a prepared
/// context's facets; `false` when the call could not be made.
#[no_mangle]
pub extern "system" fn Java_dev_turnout_internal_Jni_contextTrack<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    ctx: jlong,
    name: JString<'local>,
    value: jdouble,
) -> jboolean {
    // SAFETY: the facade passes a live context handle (module docs).
    let Some(c) = (unsafe { borrow::<TurnoutContext>(ctx) }) else { return false };
    with_env_or(&mut env, false, |env| {
        c.0.track(&name.try_to_string(env)?, value);
        Ok(Some(true))
    })
}

/// The `Jni.free*` functions: each frees a handle of its type, once (0 does nothing).
macro_rules! frees {
    ($($name:ident: $t:ty, $free:path;)*) => {$(
        #[doc = concat!("Frees a handle with [`", stringify!($free), "`].")]
        #[no_mangle]
        pub extern "system" fn $name(_env: EnvUnowned<'_>, _class: JClass<'_>, handle: jlong) {
            // SAFETY: the facade frees each handle it owns once, when no call uses it.
            unsafe { $free(handle as usize as *mut $t) }
        }
    )*};
}

frees! {
    Java_dev_turnout_internal_Jni_freeClient: TurnoutClient, client::turnout_client_free;
    Java_dev_turnout_internal_Jni_freeContext: TurnoutContext, prepared::turnout_context_free;
    Java_dev_turnout_internal_Jni_freeVariable: TurnoutVariable, prepared::turnout_variable_free;
}
