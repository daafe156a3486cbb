namespace DiffusionFunctional.Core

open System
open System.Globalization

/// The affinity matrix file format: G lines of G comma-separated numbers (invariant culture).
/// Blank lines are ignored; `#` starts a comment line. Parsing is pure: callers read the text.
module AffinityCsv =

    /// Parses CSV text into a square matrix of finite numbers WITHOUT the symmetry check, or a one-line
    /// error naming the line and column at fault; `parse` adds the check. Lets callers tell a malformed
    /// file from an asymmetric one (`Objectives.validateAffinity` gives the typed error).
    let parseSquare (text: string) : Result<float[,], string> =
        if isNull text then Error "the affinity file is empty"
        else
            let lines =
                text.Split([| '\n' |])
                |> Array.mapi (fun i line -> i + 1, line.Trim().TrimEnd('\r'))
                |> Array.filter (fun (_, line) -> line <> "" && not (line.StartsWith "#"))
            if lines.Length = 0 then Error "the affinity file has no rows"
            else
                let parseRow (lineNo: int, line: string) =
                    let cells = line.Split(',')
                    let values = Array.zeroCreate cells.Length
                    let mutable failure = None
                    for c in 0 .. cells.Length - 1 do
                        if failure.IsNone then
                            let cell = cells.[c].Trim()
                            match Double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture) with
                            | true, v when Double.IsNaN v || Double.IsInfinity v ->
                                failure <- Some(sprintf "line %d, column %d: '%s' is not a finite number" lineNo (c + 1) cell)
                            | true, v -> values.[c] <- v
                            | false, _ -> failure <- Some(sprintf "line %d, column %d: '%s' is not a number" lineNo (c + 1) cell)
                    match failure with
                    | Some message -> Error message
                    | None -> Ok values
                let rows = lines |> Array.map (fun l -> l, parseRow l)
                match rows |> Array.tryPick (fun (_, r) -> match r with Error e -> Some e | Ok _ -> None) with
                | Some e -> Error e
                | None ->
                    let values = rows |> Array.map (fun (_, r) -> match r with Ok v -> v | Error _ -> [||])
                    let g = values.Length
                    match values |> Array.tryFindIndex (fun row -> row.Length <> g) with
                    | Some i ->
                        let lineNo = fst (fst rows.[i])
                        Error(sprintf "the affinity matrix must be square: %d rows, but line %d has %d columns" g lineNo values.[i].Length)
                    | None ->
                        Ok(Array2D.init g g (fun r c -> values.[r].[c]))

    /// Parses CSV text into a square, finite, symmetric matrix, or a one-line error naming the line
    /// and column at fault. Example: `AffinityCsv.parse "1,0.5\n0.5,1"` is `Ok` of a 2 x 2 matrix.
    let parse (text: string) : Result<float[,], string> =
        parseSquare text
        |> Result.bind (fun matrix ->
            match Objectives.validateAffinity matrix with
            | Ok() -> Ok matrix
            | Error e -> Error(ClusteringError.message e))

    /// Writes a matrix in the format `parse` reads (round-trip exact: "R" formatting).
    let format (matrix: float[,]) : string =
        let g1, g2 = Array2D.length1 matrix, Array2D.length2 matrix
        let sb = Text.StringBuilder()
        for r in 0 .. g1 - 1 do
            for c in 0 .. g2 - 1 do
                if c > 0 then sb.Append(',') |> ignore
                sb.Append(matrix.[r, c].ToString("R", CultureInfo.InvariantCulture)) |> ignore
            sb.Append('\n') |> ignore
        sb.ToString()
