// A panel's one-line status (role="status"): what just happened, and whether it went wrong.
// Its own module, so the panels that share it never import a type from the component above them.
export interface Status {
  text: string;
  bad: boolean;
}

export const NO_STATUS: Status = { text: "", bad: false };
