/**
 * @file options.h
 * @brief Option numbers for the enum-keyed setters of samplers, steppers and solvers, and their
 *        introspection.
 *
 * Options are set through typed setters (`sde_<object>_set_int(obj, opt, value)`,
 * `sde_<object>_set_real(obj, opt, value)`), so adding an option never changes the ABI. The
 * number encodes the type, as in curl: integer options are 100–999, real options 1000–1999,
 * experimental options 5000 and above. Setting an option through the wrong-typed setter, or on
 * an object it does not apply to, returns ::SDE_E_INVALID. Numbers are never reused.
 *
 * Ranges by object (each area appends its options to its own range):
 * | object                         | integer     | real          |
 * |--------------------------------|-------------|---------------|
 * | predictor, corrector, PC sampler | 100–199   | 1000–1099     |
 * | discrete (DDPM/DDIM) sampler   | 200–299     | 1100–1199     |
 * | ODE solver, ODE sampler        | 300–399     | 1200–1299     |
 * | likelihood, encoder            | 400–499     | 1300–1399     |
 * | losses                         | 500–599     | 1400–1499     |
 * | controllable generation (sde_inverse) | 600–699 | 1500–1599   |
 */
#ifndef SDE_OPTIONS_H
#define SDE_OPTIONS_H

#include <sde/common.h>

SDE_BEGIN_DECLS

/** Option value types, for sde_option_type(). */
enum sde_option_type { SDE_OPTION_INT = 1, SDE_OPTION_REAL = 2 };

/** Static name of an option (e.g. "SDE_OPT_SNR"), or NULL for an unknown number. */
SDE_API const char *sde_option_name(int option);

/** ::SDE_OPTION_INT or ::SDE_OPTION_REAL, or 0 for an unknown number. */
SDE_API int sde_option_type(int option);

/**
 * Inclusive bounds of an option's valid values (integers are reported as doubles).
 * ::SDE_E_INVALID for an unknown option or NULL outputs.
 */
SDE_API int sde_option_bounds(int option, double *lo, double *hi);

/**
 * The known option numbers in increasing order: the smallest known number greater than
 * `option`, or 0 when there is none. Every option of the library, whatever object it belongs to
 * (the number's range says which; see the table above):
 * `for (int o = sde_option_next(0); o != 0; o = sde_option_next(o))`.
 */
SDE_API int sde_option_next(int option);

/**
 * Static name of the named constant that value `value` of an enumerated integer option stands
 * for (e.g. `sde_option_value_name(SDE_OPT_DDIM_SPACING, SDE_DDIM_SPACING_QUADRATIC)` is
 * "SDE_DDIM_SPACING_QUADRATIC"), or NULL if the option is not enumerated (its values are plain
 * numbers or flags) or `value` is none of its constants. An option is enumerated exactly when
 * the name of its lower bound is not NULL; its constants are the values in its bounds that
 * have a name.
 */
SDE_API const char *sde_option_value_name(int option, int64_t value);

SDE_END_DECLS

#endif /* SDE_OPTIONS_H */
