// (filled by its family implementation)
export {};
