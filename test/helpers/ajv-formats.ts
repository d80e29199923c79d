import formatsModule, {type FormatsPlugin} from "ajv-formats";

/**
 * ajv-formats' plugin. The package is CommonJS with `exports.default`: under ESM its
 * default import is the whole module object, and the plugin is that object's `default`.
 */
export const addFormats: FormatsPlugin = (formatsModule as unknown as {default?: FormatsPlugin}).default ?? (formatsModule as unknown as FormatsPlugin);
