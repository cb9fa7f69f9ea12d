package dev.turnout.internal

import java.lang.reflect.Method
import java.util.logging.Level
import java.util.logging.Logger

/**
 * The facade's logger, named `dev.turnout`: SLF4J when it is on the classpath
 * with a provider bound (found by reflection: no dependency), otherwise
 * `java.util.logging`. Levels are `java.util.logging`'s: SEVERE is SLF4J's
 * error, WARNING warn, INFO info, FINE and below debug.
 */
internal object Log {
    private val jul: Logger = Logger.getLogger("dev.turnout")

    /** SLF4J's logger and its `error`/`warn`/`info`/`debug(String)`, or null without SLF4J (or with its no-op fallback). */
    private val slf4j: Pair<Any, Map<String, Method>>? =
        try {
            val logger = Class.forName("org.slf4j.LoggerFactory").getMethod("getLogger", String::class.java).invoke(null, "dev.turnout")
            val api = Class.forName("org.slf4j.Logger")
            if (logger.javaClass.name.startsWith("org.slf4j.helpers.NOP")) {
                null
            } else {
                logger to listOf("error", "warn", "info", "debug").associateWith { api.getMethod(it, String::class.java) }
            }
        } catch (e: Exception) {
            null
        } catch (e: LinkageError) {
            null
        }

    fun log(
        level: Level,
        message: String,
    ) {
        val (logger, methods) = slf4j ?: return jul.logp(level, "dev.turnout.Poller", "sync", message)
        val name =
            when {
                level.intValue() >= Level.SEVERE.intValue() -> "error"
                level.intValue() >= Level.WARNING.intValue() -> "warn"
                level.intValue() >= Level.INFO.intValue() -> "info"
                else -> "debug"
            }
        methods.getValue(name).invoke(logger, message)
    }
}
