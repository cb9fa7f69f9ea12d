//! The JNI fast path of the Kotlin/JVM facade (`bindings/kotlin`, class
//! `dev.turnout.internal.Jni`).
//!
//! Every UniFFI call from Kotlin goes through JNA and allocates a JNA
//! `Structure` for its call status (plus a handle clone per object argument),
//! which costs several microseconds; a JNI call with primitive arguments costs
//! tens of nanoseconds. So the facade's hot calls come here, and everything
//! else stays on the generated UniFFI API.
//!
//! A thin shell: each function borrows the UniFFI objects behind the handles
//! the generated Kotlin hands out ([`Client`], [`Context`], [`Variable`]:
//! `Arc::into_raw` as a 64-bit handle; see [`crate::fast`]) and calls their
//! methods; nothing is decided here. Facets travel as UTF-8 JSON bytes (the
//! conformance vectors' form, parsed by core) in the calls that take them.
//!
//! Nothing unwinds into the JVM: the typed getters go through
//! [`crate::fast`] (which catches panics), the others run inside
//! `catch_unwind` (via the `jni` crate's `with_env`) and answer the caller's
//! default, or `null` / `0` for the facade to turn into a typed exception.
//!
//! The caller keeps every handle alive for the duration of a call (the facade
//! counts calls in flight and frees a handle only when none is).

use std::sync::Arc;

use jni::objects::{JByteArray, JClass, JString};
use jni::sys::{jboolean, jdouble, jlong, jstring};
use jni::{Env, EnvUnowned, Outcome};

use crate::uniffi_api::{Client, Context, Variable};

/// Borrows the object behind a UniFFI handle.
///
/// # Safety
/// `handle` is 0 or a live UniFFI handle of a `T` (see the module docs).
unsafe fn borrow<'a, T>(handle: jlong) -> Option<&'a T> {
    // SAFETY: per the contract above; a null handle gives `None`.
    unsafe { (handle as u64 as usize as *const T).as_ref() }
}

/// The bytes of a Java `byte[]` (facets as UTF-8 JSON) as a `String`.
fn json_arg(env: &Env<'_>, bytes: &JByteArray<'_>) -> Result<String, jni::errors::Error> {
    let v = env.convert_byte_array(bytes)?;
    String::from_utf8(v).map_err(|_| jni::errors::Error::ParseFailed("facets are not UTF-8".into()))
}

/// A fresh context for `client` from facets JSON bytes.
fn context(
    env: &Env<'_>,
    client: &Client,
    facets: &JByteArray<'_>,
) -> Result<Option<Arc<Context>>, jni::errors::Error> {
    Ok(client.context_json(json_arg(env, facets)?).ok())
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
/// default)` (the prepared hot path, [`crate::fast`]'s getter) and
/// `Jni.<one_shot>(client, variable, facetsJson, default)` (one decision
/// without a prepared context: `client.getVariable(name, facets).<type>(default)`).
macro_rules! numeric_getters {
    ($($hot:ident, $one_shot:ident: $jt:ty, $fast:path, $get:ident;)*) => {$(
        #[doc = concat!("`Jni` prepared getter ([`", stringify!($fast), "`]).")]
        #[no_mangle]
        pub extern "system" fn $hot(
            _env: EnvUnowned<'_>,
            _class: JClass<'_>,
            ctx: jlong,
            variable: jlong,
            default: $jt,
        ) -> $jt {
            // SAFETY: the facade passes live handles (module docs).
            unsafe { $fast(ctx as u64, variable as u64, default.into()) }.into_jni()
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

/// A fast getter's C result as its JNI type (the boolean getter answers 0/1).
trait IntoJni<T> {
    fn into_jni(self) -> T;
}

impl<T> IntoJni<T> for T {
    fn into_jni(self) -> T {
        self
    }
}

impl IntoJni<jboolean> for i8 {
    fn into_jni(self) -> jboolean {
        self != 0
    }
}

numeric_getters! {
    Java_dev_turnout_internal_Jni_int64, Java_dev_turnout_internal_Jni_oneShotInt64:
        jlong, crate::fast::turnout_fast_int64, int64;
    Java_dev_turnout_internal_Jni_float64, Java_dev_turnout_internal_Jni_oneShotFloat64:
        jdouble, crate::fast::turnout_fast_float64, float64;
    Java_dev_turnout_internal_Jni_bool, Java_dev_turnout_internal_Jni_oneShotBool:
        jboolean, crate::fast::turnout_fast_bool, bool;
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
    let (Some(c), Some(v)) = (unsafe { borrow::<Context>(ctx) }, unsafe { borrow::<Variable>(variable) }) else {
        return std::ptr::null_mut();
    };
    with_env_or(&mut env, std::ptr::null_mut(), |env| {
        let value = c.string(v, default.try_to_string(env)?);
        Ok(Some(env.new_string(value)?.into_raw()))
    })
}

/// `Jni.context(client, facetsJson)`: a new UniFFI `Context` handle (owned by
/// the caller, released with the generated free function), or 0 when the
/// facets are rejected (the facade then asks the generated API for the typed error).
#[no_mangle]
pub extern "system" fn Java_dev_turnout_internal_Jni_context<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    client: jlong,
    facets: JByteArray<'local>,
) -> jlong {
    // SAFETY: the facade passes a live client handle (module docs).
    let Some(client) = (unsafe { borrow::<Client>(client) }) else { return 0 };
    with_env_or(&mut env, 0, |env| {
        Ok(context(env, client, &facets)?.map(|c| uniffi::Handle::from_arc(c).as_raw() as jlong))
    })
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
    let (Some(client), Some(v)) = (unsafe { borrow::<Client>(client) }, unsafe { borrow::<Variable>(variable) }) else {
        return std::ptr::null_mut();
    };
    with_env_or(&mut env, std::ptr::null_mut(), |env| {
        let Some(c) = context(env, client, &facets)? else { return Ok(None) };
        let value = c.string(v, default.try_to_string(env)?);
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
    let (Some(client), Some(v)) = (unsafe { borrow::<Client>(client) }, unsafe { borrow::<Variable>(variable) }) else {
        return default;
    };
    with_env_or(env, default, |env| {
        let Some(c) = context(env, client, facets)? else { return Ok(None) };
        Ok(Some(get(&c, v)))
    })
}

/// `Jni.track(client, name, value, facetsJson)`: records a metric
/// ([`Client::track`] semantics, through a context of these facets).
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
    let Some(client) = (unsafe { borrow::<Client>(client) }) else { return false };
    with_env_or(&mut env, false, |env| {
        let Some(c) = context(env, client, &facets)? else { return Ok(None) };
        c.track(name.try_to_string(env)?, value);
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
    let Some(c) = (unsafe { borrow::<Context>(ctx) }) else { return false };
    with_env_or(&mut env, false, |env| {
        c.track(name.try_to_string(env)?, value);
        Ok(Some(true))
    })
}
