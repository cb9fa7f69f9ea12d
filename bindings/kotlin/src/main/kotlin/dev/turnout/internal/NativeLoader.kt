package dev.turnout.internal

import com.sun.jna.NativeLibrary
import com.sun.jna.Platform
import java.io.File
import java.nio.file.Files

/**
 * Finds the native library (`libturnout_ffi`) before anything loads it.
 *
 * The jar carries it in JNA's resource layout: `/<prefix>/libturnout_ffi.so`
 * (or `.dylib`), `<prefix>` being JNA's [Platform.RESOURCE_PREFIX]
 * (`linux-x86-64`, `linux-aarch64`, `darwin-x86-64`, `darwin-aarch64`).
 * JNA could extract it by itself, but it deletes the extracted file as soon
 * as it is loaded, and the JNI fast path ([Jni]) must `System.load` the very
 * same file (one instance of the library, shared handles). So this object
 * extracts it once, into a fresh temporary directory (under `jna.tmpdir` if
 * set, else `java.io.tmpdir`; removed when the JVM exits), and registers that
 * directory as JNA's search path for `turnout_ffi`: the generated bindings
 * and [Jni] then load that one file. No system property is needed.
 * If the extraction fails (no writable temporary directory), JNA extracts it
 * by itself and the facade runs without the fast path.
 *
 * Nothing is extracted on Android (the APK's `jniLibs` are found by the
 * system), when `uniffi.component.turnout_ffi.libraryOverride` is set, when a
 * directory of `jna.library.path` holds the library (a developer's own
 * build), or when the platform has no library in the jar (JNA then searches
 * the system paths as usual).
 */
internal object NativeLoader {
    /** The library name JNA and `System.loadLibrary` take. */
    const val NAME = "turnout_ffi"

    /** The classpath resource for this platform, e.g. `/linux-x86-64/libturnout_ffi.so`. */
    val resource: String = "/" + Platform.RESOURCE_PREFIX + "/" + System.mapLibraryName(NAME)

    /** The extracted library, or `null` when it is found some other way (see above). */
    @JvmField val extracted: File? = extract()

    /** Runs the extraction (once): call before the generated bindings are first used. */
    fun ensure() {
        extracted // the object's initialiser did the work
    }

    private fun extract(): File? {
        if (Platform.isAndroid()) return null
        if (System.getProperty("uniffi.component.$NAME.libraryOverride") != null) return null
        val mapped = System.mapLibraryName(NAME)
        val custom = System.getProperty("jna.library.path")?.split(File.pathSeparator).orEmpty()
        if (custom.any { it.isNotEmpty() && File(it, mapped).isFile }) return null
        val input = NativeLoader::class.java.getResourceAsStream(resource) ?: return null
        // A failure here (no writable temporary directory) leaves the loading to JNA alone
        // (which extracts the library itself; the JNI fast path is then off).
        return input.use { runCatching { extractTo(it, mapped) }.getOrNull() }
    }

    private fun extractTo(input: java.io.InputStream, mapped: String): File {
        val base = System.getProperty("jna.tmpdir")?.let { File(it).apply { mkdirs() } }
        val dir = (if (base != null) Files.createTempDirectory(base.toPath(), "turnout-") else Files.createTempDirectory("turnout-")).toFile()
        val file = File(dir, mapped)
        // deleteOnExit runs in reverse order of registration: the file, then its directory.
        dir.deleteOnExit()
        file.deleteOnExit()
        Files.copy(input, file.toPath())
        NativeLibrary.addSearchPath(NAME, dir.absolutePath)
        return file
    }
}
