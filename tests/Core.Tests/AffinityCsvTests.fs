module DiffusionFunctional.Core.Tests.AffinityCsvTests

open DiffusionFunctional.Core
open DiffusionFunctional.Core.Tests.Generators
open Expecto
open FsCheck.FSharp

let private errorOf text =
    match AffinityCsv.parse text with
    | Error e -> e
    | Ok _ -> failtestf "expected an error for %A" text

[<Tests>]
let tests =
    testList "Affinity CSV" [
        testPropertyWithConfig config "format then parse is the identity" <| fun () ->
            Prop.forAll (Arb.fromGen (Gen.choose (1, 12) |> Gen.bind genSymmetric)) <| fun m ->
                match AffinityCsv.parse (AffinityCsv.format m) with
                | Ok back -> Expect.equal back m "round trip"
                | Error e -> failtest e

        test "comments, blank lines, CRLF and spaces are accepted" {
            match AffinityCsv.parse "# groups: 2\r\n1, 0.5\r\n\r\n0.5 ,1\r\n" with
            | Ok m -> Expect.equal m (array2D [ [ 1.0; 0.5 ]; [ 0.5; 1.0 ] ]) "parsed"
            | Error e -> failtest e
        }

        test "each malformed input names its problem" {
            Expect.stringContains (errorOf "") "no rows" "empty"
            Expect.stringContains (errorOf "1,x\nx,1") "line 1, column 2: 'x' is not a number" "non-numeric"
            Expect.stringContains (errorOf "1,NaN\nNaN,1") "not a finite number" "NaN"
            Expect.stringContains (errorOf "1,Infinity\nInfinity,1") "not a finite number" "infinity"
            Expect.stringContains (errorOf "1,2,3\n4,5,6") "square" "non-square"
            Expect.stringContains (errorOf "1,2\n3,4") "symmetric" "asymmetric"
            Expect.stringContains (errorOf "1,2\n2") "line 2 has 1 columns" "ragged"
        }

        test "parseSquare skips only the symmetry check" {
            match AffinityCsv.parseSquare "1,2\n3,4" with
            | Ok m -> Expect.equal m (array2D [ [ 1.0; 2.0 ]; [ 3.0; 4.0 ] ]) "an asymmetric square matrix is parsed"
            | Error e -> failtest e
            for bad in [ ""; "1,x\nx,1"; "1,NaN\nNaN,1"; "1,2,3\n4,5,6"; "1,2\n2" ] do
                match AffinityCsv.parseSquare bad, AffinityCsv.parse bad with
                | Error a, Error b -> Expect.equal a b (sprintf "same error for %A" bad)
                | other -> failtestf "expected errors from both for %A, got %A" bad other
        }
    ]
