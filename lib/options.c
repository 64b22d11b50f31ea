/* Option introspection from the table in options_table.h. */
#include "options_table.h"
#include "sde_private.h"

struct option_row {
    int number, type;
    const char *name;
    double lo, hi;
};

#define SDE__ROW(name, number, type, lo, hi) {number, type, #name, lo, hi},
/* Each row's number must equal the public enum constant of the same name. */
#define SDE__AGREE(name, number, type, lo, hi) _Static_assert(name == number, #name);

SDE__OPTIONS_ALL(SDE__AGREE)

static const struct option_row rows[] = {
    SDE__OPTIONS_ALL(SDE__ROW) {0, 0, NULL, 0, 0}, /* sentinel; keeps the array non-empty */
};

static const struct option_row *find(int option)
{
    for (const struct option_row *r = rows; r->name != NULL; r++)
        if (r->number == option)
            return r;
    return NULL;
}

const char *sde_option_name(int option)
{
    const struct option_row *r = find(option);
    return r ? r->name : NULL;
}

int sde_option_type(int option)
{
    const struct option_row *r = find(option);
    return r ? r->type : 0;
}

int sde_option_bounds(int option, double *lo, double *hi)
{
    SDE__CHECK(sde__check_ptr(lo, __func__, "lo"));
    SDE__CHECK(sde__check_ptr(hi, __func__, "hi"));
    const struct option_row *r = find(option);
    if (r == NULL)
        return sde__fail(SDE_E_INVALID, __func__, "option (%d) is not a known option", option);
    *lo = r->lo;
    *hi = r->hi;
    return SDE_OK;
}

int sde_option_next(int option)
{
    /* the table is grouped by area, not sorted: take the smallest number above `option` */
    int next = 0;
    for (const struct option_row *r = rows; r->name != NULL; r++)
        if (r->number > option && (next == 0 || r->number < next))
            next = r->number;
    return next;
}

struct value_row {
    int option;
    int64_t value;
    const char *name;
};

#define SDE__VALUE_ROW(option, constant) {option, constant, #constant},
static const struct value_row value_rows[] = {
    SDE__OPTION_VALUES(SDE__VALUE_ROW) {0, 0, NULL}, /* sentinel */
};

const char *sde_option_value_name(int option, int64_t value)
{
    for (const struct value_row *r = value_rows; r->name != NULL; r++)
        if (r->option == option && r->value == value)
            return r->name;
    return NULL;
}

int sde__not_an_option(int option, int type, const char *object, const char *func)
{
    const char *name = sde_option_name(option);
    const char *kind = type == SDE_OPTION_REAL ? "a real" : "an integer";
    return sde__fail(SDE_E_INVALID, func, "option %d (%s) is not %s option of %s", option,
                     name != NULL ? name : "unknown", kind, object);
}
