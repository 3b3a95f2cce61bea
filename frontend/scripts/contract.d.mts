export declare const BACKEND_SDL: string;
export declare const EXPECTED_SDL: string;
export declare function mergeContract(actualText?: string, expectedText?: string): { sdl: string; pending: string[] };
