package dev.turnout

import dev.turnout.internal.JsonBytes
import dev.turnout.ffi.FacetValue as FfiFacetValue

/**
 * The facets of one unit or request: the named attributes decisions are
 * taken on and events are recorded with, in the style of Grab's SDK:
 *
 * ```kotlin
 * val facets = Facets().passenger(123).city(10).booking("ADR-123-2-001")
 * ```
 *
 * Well-known names have typed setters ([passenger] = `pax`, [driver] = `drv`,
 * [service] = `svc`, [city], [country], [booking], [location] = `loc`,
 * [session], [request] = `req`, [device], [tag], [ts]); any other name goes
 * through [set]. Integers are 64-bit end to end: ids above 2^53 bucket
 * exactly as on every other platform. Setting a name again replaces its
 * value; insertion order is kept.
 *
 * A builder: mutable and not thread-safe. Build one per request, or build
 * a [Context] from it once and share that.
 */
class Facets {
    private var names = arrayOfNulls<String>(4)
    private var kinds = ByteArray(4)
    private var bits = LongArray(4)
    private var strs = arrayOfNulls<String>(4)
    private var n = 0

    /** The number of facets. */
    val size: Int get() = n

    /** Passenger id (`pax`). */
    fun passenger(id: Long): Facets = set(PASSENGER, id)

    /** Driver id (`drv`). */
    fun driver(id: Long): Facets = set(DRIVER, id)

    /** Service (vehicle type) id (`svc`). */
    fun service(id: Long): Facets = set(SERVICE, id)

    /** City id (`city`). */
    fun city(id: Long): Facets = set(CITY, id)

    /** Country code (`country`). */
    fun country(code: String): Facets = set(COUNTRY, code)

    /** Booking code (`booking`). */
    fun booking(code: String): Facets = set(BOOKING, code)

    /** Location: geohash or coordinates (`loc`). */
    fun location(value: String): Facets = set(LOCATION, value)

    /** Session id (`session`). */
    fun session(id: String): Facets = set(SESSION, id)

    /** Request id (`req`). */
    fun request(id: String): Facets = set(REQUEST, id)

    /** Device id (`device`). */
    fun device(id: String): Facets = set(DEVICE, id)

    /** User-defined tag (`tag`). */
    fun tag(value: String): Facets = set(TAG, value)

    /** Unix time in seconds (`ts`); when absent, the client's clock supplies it. */
    fun ts(seconds: Long): Facets = set(TS, seconds)

    /** Sets an integer facet. */
    fun set(name: String, value: Long): Facets = put(name, INT, value, null)

    /** Sets an integer facet. */
    fun set(name: String, value: Int): Facets = put(name, INT, value.toLong(), null)

    /**
     * Sets a number facet. Integral doubles bucket like the integer (`6.0` is `6`).
     * @throws TurnoutException.Facets for NaN or an infinity.
     */
    fun set(name: String, value: Double): Facets {
        if (value.isNaN() || value.isInfinite()) throw TurnoutException.Facets("facet `$name`: $value is not a finite number")
        return put(name, FLOAT, value.toRawBits(), null)
    }

    /** Sets a boolean facet. */
    fun set(name: String, value: Boolean): Facets = put(name, BOOL, if (value) 1 else 0, null)

    /** Sets a string facet. */
    fun set(name: String, value: String): Facets = put(name, STR, 0, value)

    /** Removes a facet; returns whether it was there. */
    fun remove(name: String): Boolean {
        val i = indexOf(name)
        if (i < 0) return false
        for (j in i until n - 1) {
            names[j] = names[j + 1]
            kinds[j] = kinds[j + 1]
            bits[j] = bits[j + 1]
            strs[j] = strs[j + 1]
        }
        n--
        names[n] = null
        strs[n] = null
        return true
    }

    /** The value of a facet (`Long`, `Double`, `Boolean` or `String`), or null. */
    operator fun get(name: String): Any? {
        val i = indexOf(name)
        return if (i < 0) null else valueAt(i)
    }

    /** The facets as an insertion-ordered map of `Long`, `Double`, `Boolean` and `String` values. */
    fun toMap(): Map<String, Any> {
        val m = LinkedHashMap<String, Any>(n * 2)
        for (i in 0 until n) m[names[i]!!] = valueAt(i)
        return m
    }

    /** A copy of these facets. */
    fun copy(): Facets {
        val f = Facets()
        for (i in 0 until n) f.put(names[i]!!, kinds[i], bits[i], strs[i])
        return f
    }

    override fun equals(other: Any?): Boolean = other is Facets && other.toMap() == toMap()

    override fun hashCode(): Int = toMap().hashCode()

    override fun toString(): String = "Facets(${String(toJson(), Charsets.UTF_8)})"

    /** The facets as UTF-8 JSON, the form the native library parses (`{"pax":123,"city":10}`). */
    internal fun toJson(): ByteArray {
        val w = JsonBytes(16 + n * 24)
        w.byte('{')
        for (i in 0 until n) {
            if (i > 0) w.byte(',')
            w.string(names[i]!!).byte(':')
            when (kinds[i]) {
                INT -> w.long(bits[i])
                FLOAT -> w.double(Double.fromBits(bits[i]))
                BOOL -> w.bool(bits[i] != 0L)
                else -> w.string(strs[i]!!)
            }
        }
        return w.byte('}').toByteArray()
    }

    /** The facets as the generated bindings' map (for the calls that take one). */
    internal fun toFfi(): Map<String, FfiFacetValue> {
        val m = HashMap<String, FfiFacetValue>(n * 2)
        for (i in 0 until n) {
            m[names[i]!!] =
                when (kinds[i]) {
                    INT -> FfiFacetValue.Int(bits[i])
                    FLOAT -> FfiFacetValue.Float(Double.fromBits(bits[i]))
                    BOOL -> FfiFacetValue.Bool(bits[i] != 0L)
                    else -> FfiFacetValue.Str(strs[i]!!)
                }
        }
        return m
    }

    private fun valueAt(i: Int): Any =
        when (kinds[i]) {
            INT -> bits[i]
            FLOAT -> Double.fromBits(bits[i])
            BOOL -> bits[i] != 0L
            else -> strs[i]!!
        }

    private fun indexOf(name: String): Int {
        for (i in 0 until n) if (names[i] == name) return i
        return -1
    }

    private fun put(name: String, kind: Byte, bits: Long, str: String?): Facets {
        var i = indexOf(name)
        if (i < 0) {
            if (n == names.size) {
                val cap = n * 2
                names = names.copyOf(cap)
                kinds = kinds.copyOf(cap)
                this.bits = this.bits.copyOf(cap)
                strs = strs.copyOf(cap)
            }
            i = n++
            names[i] = name
        }
        kinds[i] = kind
        this.bits[i] = bits
        strs[i] = str
        return this
    }

    companion object {
        /** `pax`: passenger id. */
        const val PASSENGER = "pax"

        /** `drv`: driver id. */
        const val DRIVER = "drv"

        /** `svc`: service (vehicle type) id. */
        const val SERVICE = "svc"

        /** `city`: city id. */
        const val CITY = "city"

        /** `country`: country code. */
        const val COUNTRY = "country"

        /** `booking`: booking code. */
        const val BOOKING = "booking"

        /** `loc`: geohash or coordinates. */
        const val LOCATION = "loc"

        /** `session`: session id. */
        const val SESSION = "session"

        /** `req`: request id. */
        const val REQUEST = "req"

        /** `device`: device id. */
        const val DEVICE = "device"

        /** `tag`: user-defined tag. */
        const val TAG = "tag"

        /** `ts`: unix time in seconds. */
        const val TS = "ts"

        private const val INT: Byte = 0
        private const val FLOAT: Byte = 1
        private const val BOOL: Byte = 2
        private const val STR: Byte = 3

        /**
         * Facets from a map: `Long`/`Int`/`Short`/`Byte` (integers),
         * `Double`/`Float`, `Boolean`, `String`; a null value means absent.
         * A `java.math.BigInteger` within 64 bits is an integer.
         * @throws TurnoutException.Facets for any other value type.
         */
        @JvmStatic
        fun of(map: Map<String, Any?>): Facets {
            val f = Facets()
            for ((k, v) in map) {
                when (v) {
                    null -> {}
                    is Long -> f.set(k, v)
                    is Int -> f.set(k, v.toLong())
                    is Short -> f.set(k, v.toLong())
                    is Byte -> f.set(k, v.toLong())
                    is Double -> f.set(k, v)
                    is Float -> f.set(k, v.toDouble())
                    is Boolean -> f.set(k, v)
                    is String -> f.set(k, v)
                    is java.math.BigInteger ->
                        if (v.bitLength() < 64) {
                            f.set(k, v.toLong())
                        } else {
                            throw TurnoutException.Facets("facet `$k`: $v does not fit a 64-bit integer")
                        }
                    else -> throw TurnoutException.Facets("facet `$k`: unsupported value type ${v.javaClass.name}")
                }
            }
            return f
        }
    }
}
