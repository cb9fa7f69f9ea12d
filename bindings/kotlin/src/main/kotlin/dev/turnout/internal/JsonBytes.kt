package dev.turnout.internal

/**
 * A minimal JSON writer straight to UTF-8 bytes, for the facets and options
 * the facade hands to the native library (no JSON library on the classpath:
 * the facade has no dependency beyond JNA and the Kotlin standard library).
 */
internal class JsonBytes(capacity: Int = 64) {
    private var buf = ByteArray(capacity)
    private var len = 0

    private fun ensure(n: Int) {
        if (len + n > buf.size) buf = buf.copyOf(maxOf(buf.size * 2, len + n))
    }

    fun byte(b: Char): JsonBytes {
        ensure(1)
        buf[len++] = b.code.toByte()
        return this
    }

    /** ASCII text written as is (numbers, literals). */
    fun ascii(s: String): JsonBytes {
        ensure(s.length)
        for (c in s) buf[len++] = c.code.toByte()
        return this
    }

    fun long(v: Long): JsonBytes {
        if (v == Long.MIN_VALUE) return ascii("-9223372036854775808")
        ensure(20)
        var n = v
        if (n < 0) {
            buf[len++] = '-'.code.toByte()
            n = -n
        }
        val start = len
        do {
            buf[len++] = ('0'.code + (n % 10).toInt()).toByte()
            n /= 10
        } while (n != 0L)
        var i = start
        var j = len - 1
        while (i < j) {
            val t = buf[i]
            buf[i++] = buf[j]
            buf[j--] = t
        }
        return this
    }

    /** A finite double (callers reject NaN and infinities before). */
    fun double(v: Double): JsonBytes = ascii(v.toString())

    fun bool(v: Boolean): JsonBytes = ascii(if (v) "true" else "false")

    /** A JSON string literal, escaped. */
    fun string(s: String): JsonBytes {
        ensure(s.length + 2)
        buf[len++] = '"'.code.toByte()
        for (i in s.indices) {
            val c = s[i]
            when {
                c == '"' || c == '\\' -> {
                    ensure(2)
                    buf[len++] = '\\'.code.toByte()
                    buf[len++] = c.code.toByte()
                }
                c < ' ' -> {
                    ensure(6)
                    ascii("\\u00")
                    buf[len++] = HEX[c.code shr 4]
                    buf[len++] = HEX[c.code and 0xF]
                }
                c.code < 0x80 -> {
                    ensure(1)
                    buf[len++] = c.code.toByte()
                }
                else -> {
                    // Non-ASCII: encode the rest of the string as UTF-8 in one go.
                    utf8Escaped(s, i)
                    break
                }
            }
        }
        ensure(1)
        buf[len++] = '"'.code.toByte()
        return this
    }

    private fun utf8Escaped(s: String, from: Int) {
        val rest = StringBuilder(s.length - from + 8)
        for (i in from until s.length) {
            val c = s[i]
            when {
                c == '"' || c == '\\' -> rest.append('\\').append(c)
                c < ' ' -> rest.append("\\u00").append(HEX_CHARS[c.code shr 4]).append(HEX_CHARS[c.code and 0xF])
                else -> rest.append(c)
            }
        }
        val bytes = rest.toString().toByteArray(Charsets.UTF_8)
        ensure(bytes.size)
        System.arraycopy(bytes, 0, buf, len, bytes.size)
        len += bytes.size
    }

    fun toByteArray(): ByteArray = buf.copyOf(len)

    override fun toString(): String = String(buf, 0, len, Charsets.UTF_8)

    private companion object {
        const val HEX_CHARS = "0123456789abcdef"
        val HEX = ByteArray(16) { HEX_CHARS[it].code.toByte() }
    }
}
