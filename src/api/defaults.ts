// The default of every operation option, as the core defines it (its option
// structs, read through the addon). The library passes undefined for an option
// not given; the CLIs' --help shows these values.
import { native, type NativeDefaults } from '../seam/native.js';

export type OptionDefaults = NativeDefaults;

export const defaults: OptionDefaults = native.defaults;
