package dev.turnout.internal

/**
 * A minimal JSON reader for the text the native library returns (the sync's
 * notices and state): objects become `Map<String, Any?>` (members in order),
 * arrays `List<Any?>`, integers `Long`, other numbers `Double`. The input is
 * trusted (serde_json's output), so errors are only what the JDK throws.
 */
internal class JsonReader private constructor(
    private val s: String,
) {
    private var i = 0

    private fun ws() {
        while (i < s.length && s[i] <= ' ') i++
    }

    private fun value(): Any? {
        ws()
        return when (s[i]) {
            '{' -> members('}') { m: MutableMap<String, Any?> -> m[str().also { ws(); i++ }] = value() }
            '[' -> members(']') { l: MutableList<Any?> -> l += value() }
            '"' -> str()
            't' -> true.also { i += 4 }
            'f' -> false.also { i += 5 }
            'n' -> null.also { i += 4 }
            else -> s.substring(i, number()).let { it.toLongOrNull() ?: it.toDouble() }
        }
    }

    /** The members of an object or array up to [close], each read by [member] into a fresh container. */
    @Suppress("UNCHECKED_CAST")
    private inline fun <C> members(
        close: Char,
        member: (C) -> Unit,
    ): C {
        val c = (if (close == '}') LinkedHashMap<String, Any?>() else ArrayList<Any?>()) as C
        i++
        ws()
        if (s[i] == close) return c.also { i++ }
        while (true) {
            ws()
            member(c)
            ws()
            if (s[i++] == close) return c
        }
    }

    private fun number(): Int {
        while (i < s.length && s[i] in "+-0123456789.eE") i++
        return i
    }

    private fun str(): String {
        val b = StringBuilder()
        i++
        while (true) {
            when (val c = s[i++]) {
                '"' -> return b.toString()
                '\\' ->
                    when (val e = s[i++]) {
                        'u' -> b.append(s.substring(i, i + 4).toInt(16).toChar()).also { i += 4 }
                        'n' -> b.append('\n')
                        't' -> b.append('\t')
                        'r' -> b.append('\r')
                        'b' -> b.append('\b')
                        'f' -> b.append('\u000C')
                        else -> b.append(e)
                    }
                else -> b.append(c)
            }
        }
    }

    companion object {
        /** The value of JSON [text]. */
        fun parse(text: String): Any? = JsonReader(text).value()

        /** The object of JSON [text]. */
        @Suppress("UNCHECKED_CAST")
        fun obj(text: String): Map<String, Any?> = parse(text) as Map<String, Any?>
    }
}
